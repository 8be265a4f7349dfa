import { Compile } from 'typebox/compile';
import type { Static, TObject, TProperties } from 'typebox';
import { Value } from 'typebox/value';

/** Thrown when the environment does not satisfy a service's schema; its message is the one line an operator needs. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads settings from environment variables through one TypeBox schema: defaults are
 * filled in, strings are converted to the declared types, and the first bad or missing
 * variable is reported by name together with what it expects (the schema's description).
 * The value itself is shown only when it cannot be a secret: a property marked
 * `secret: true` (URLs with credentials, tokens) is described, never echoed.
 */
export function loadConfig<P extends TProperties>(
  schema: TObject<P>,
  env: Record<string, string | undefined> = process.env,
): Static<TObject<P>> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const candidate = Value.Convert(schema, Value.Default(schema, raw));
  const validator = Compile(schema);
  if (validator.Check(candidate)) return candidate as Static<TObject<P>>;

  const [first] = validator.Errors(candidate);
  const variable = first ? variableOf(first.instancePath, first.params) : undefined;
  if (!variable) throw new ConfigError('invalid configuration');
  const property = schema.properties[variable] as { description?: string; secret?: boolean } | undefined;
  const given = env[variable];
  const problem =
    given === undefined || given === ''
      ? 'is missing'
      : isSecret(variable, property)
        ? 'is not valid (its value is not shown: it may hold a password or token)'
        : `is ${JSON.stringify(given)}`;
  throw new ConfigError(`${variable} ${problem}: expected ${property?.description ?? first?.message}`);
}

function variableOf(instancePath: string, params: unknown): string | undefined {
  const fromPath = instancePath.split('/')[1];
  if (fromPath) return fromPath;
  const missing = (params as { requiredProperties?: string[] } | undefined)?.requiredProperties?.[0];
  return missing;
}

/**
 * Marked secret by its schema, or named like one (RABBITMQ_URL is covered by its name): the
 * name is a safety net for a setting added without the mark, since an error line ends up in
 * logs that many people read.
 */
function isSecret(variable: string, property: { secret?: boolean } | undefined): boolean {
  return property?.secret === true || /(URL|TOKEN|SECRET|PASSWORD|PASSPHRASE|_KEY|CREDENTIALS?)$/.test(variable);
}
