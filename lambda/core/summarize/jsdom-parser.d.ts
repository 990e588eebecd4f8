/** The small DOM parser that ships with @mozilla/readability (JSDOMParser.js); it has no type declarations of its own. */
declare module '@mozilla/readability/JSDOMParser' {
  class JSDOMParser {
    /** Set when the markup was not well formed; parsing goes on regardless. */
    errorState: string;
    parse(html: string, url?: string): Document;
  }
  export = JSDOMParser;
}
