import { HttpError } from './server.ts';

/** One schema violation, as fastify hands it over (ajv's shape; TypeBox's compiler produces the same). */
interface Issue {
  keyword?: string;
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Turns a validation failure into the kit's 400 body, naming the field in every case:
 * `body.items.0.qty must be >= 1`, `body.customerEmail is required`, `body.foo is not allowed`.
 */
export function validationFailed(error: { validation?: readonly Issue[]; validationContext?: string }): HttpError {
  const issues = error.validation ?? [];
  const part = error.validationContext ?? 'request';
  const issue = pick(issues);
  const message = issue ? describe(part, issue) : `${part} is invalid`;
  return new HttpError(
    400,
    'validation_failed',
    message,
    issues
      // TypeBox reports an unexpected property twice; keep the report that names it.
      .filter((entry) => entry.keyword !== 'boolean' || issues.length === 1)
      .map((entry) => ({ path: entry.instancePath, message: entry.message, params: entry.params })),
  );
}

/** The issue that explains the failure best: an unexpected or missing property over the noise it causes. */
function pick(issues: readonly Issue[]): Issue | undefined {
  return (
    issues.find((issue) => issue.keyword === 'additionalProperties') ??
    issues.find((issue) => issue.keyword === 'required') ??
    issues.find((issue) => issue.keyword !== 'boolean') ??
    issues[0]
  );
}

function describe(part: string, issue: Issue): string {
  const at = `${part}${issue.instancePath.replaceAll('/', '.')}`;
  const params = issue.params ?? {};
  if (issue.keyword === 'additionalProperties') {
    const extra = first(params.additionalProperties) ?? first(params.additionalProperty);
    if (extra !== undefined) return `${at}.${extra} is not allowed`;
  }
  if (issue.keyword === 'required') {
    const missing = first(params.requiredProperties) ?? first(params.missingProperty);
    if (missing !== undefined) return `${at}.${missing} is required`;
  }
  if (issue.keyword === 'enum' && Array.isArray(params.allowedValues)) return `${at} must be one of ${params.allowedValues.join(', ')}`;
  return `${at} ${issue.message ?? 'is invalid'}`;
}

function first(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length ? String(value[0]) : undefined;
  return typeof value === 'string' ? value : undefined;
}
