import { Type } from 'typebox';

const PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
const ENDPOINT = '^https?://[^\\s]+$';

/**
 * The standard OTEL_* variables this kit reads, in the service's settings schema so a bad value
 * stops startup with the one line naming it, as for every other setting. Only HTTP export is
 * offered (grpc would bring a second transport stack for the same spans). With no endpoint set
 * (or OTEL_SDK_DISABLED=true) no SDK starts at all.
 */
export function tracingSettings(service: string) {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
      Type.String({ pattern: ENDPOINT, secret: true, description: 'the OTLP/HTTP base URL such as http://jaeger:4318 (traces go to its /v1/traces), or unset for no tracing' }),
    ),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(
      Type.String({ pattern: ENDPOINT, secret: true, description: 'the full OTLP/HTTP traces URL such as http://jaeger:4318/v1/traces (wins over OTEL_EXPORTER_OTLP_ENDPOINT)' }),
    ),
    OTEL_EXPORTER_OTLP_PROTOCOL: Type.Union(
      PROTOCOLS.map((protocol) => Type.Literal(protocol)),
      { default: 'http/protobuf', description: 'http/protobuf or http/json' },
    ),
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Type.Optional(
      Type.Union(
        PROTOCOLS.map((protocol) => Type.Literal(protocol)),
        { description: 'http/protobuf or http/json (wins over OTEL_EXPORTER_OTLP_PROTOCOL)' },
      ),
    ),
    OTEL_SERVICE_NAME: Type.String({ default: service, minLength: 1, maxLength: 200, description: `the service.name spans carry, ${service} by default` }),
    OTEL_TRACES_SAMPLER: Type.Union(
      SAMPLERS.map((sampler) => Type.Literal(sampler)),
      { default: 'parentbased_always_on', description: SAMPLERS.join(', ') },
    ),
    OTEL_TRACES_SAMPLER_ARG: Type.Number({ default: 1, minimum: 0, maximum: 1, description: 'the ratio of traces sampled by traceidratio samplers, from 0 to 1' }),
    OTEL_SDK_DISABLED: Type.Boolean({ default: false, description: 'true to record no spans whatever else is set, else false' }),
  };
}

export interface TracingSettings {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_PROTOCOL: (typeof PROTOCOLS)[number];
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: (typeof PROTOCOLS)[number] | undefined;
  OTEL_SERVICE_NAME: string;
  OTEL_TRACES_SAMPLER: (typeof SAMPLERS)[number];
  OTEL_TRACES_SAMPLER_ARG: number;
  OTEL_SDK_DISABLED: boolean;
}

/** Where spans go, or undefined when tracing is off: the per-signal URL as given, else the base URL's /v1/traces (as the OTLP spec says). */
export function tracesUrl(settings: Pick<TracingSettings, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SDK_DISABLED'>): string | undefined {
  if (settings.OTEL_SDK_DISABLED) return undefined;
  if (settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (settings.OTEL_EXPORTER_OTLP_ENDPOINT) return `${settings.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}
