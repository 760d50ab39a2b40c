/**
 * The contract's list shape, shared by every list endpoint:
 * `{"entries": [..], "total", "limit", "offset"}`.
 */
export interface Page {
  limit: number;
  offset: number;
}

export interface ListAnswer<T> extends Page {
  entries: T[];
  /** Rows matching the filters, regardless of limit and offset. */
  total: number;
}

export function listAnswer<T>(entries: T[], total: number, page: Page): ListAnswer<T> {
  return { entries, total, limit: page.limit, offset: page.offset };
}

/** JSON schema of a list answer whose entries follow `entry`; used by the OpenAPI document. */
export function listAnswerSchema(entry: object): object {
  return {
    type: 'object',
    required: ['entries', 'total', 'limit', 'offset'],
    properties: {
      entries: { type: 'array', items: entry },
      total: { type: 'integer', minimum: 0 },
      limit: { type: 'integer', minimum: 1, maximum: 500 },
      offset: { type: 'integer', minimum: 0 },
    },
  };
}
