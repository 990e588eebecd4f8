export interface ContentType {
  /** Lowercase `type/subtype`. */
  mediaType: string;
  /** Lowercase, unquoted; undefined when absent. */
  charset?: string;
}

/** `Text/HTML; Charset="UTF-8"` -> `{ mediaType: 'text/html', charset: 'utf-8' }`. */
export function parseContentType(value: string): ContentType {
  const [type = '', ...params] = value.split(';');
  const charset = params
    .map((p) => p.trim().match(/^charset\s*=\s*"?([^";\s]+)"?$/i)?.[1])
    .find((c): c is string => c !== undefined);
  return { mediaType: type.trim().toLowerCase(), ...(charset ? { charset: charset.toLowerCase() } : {}) };
}
