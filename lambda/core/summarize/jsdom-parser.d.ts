/** The small DOM parser that ships with @mozilla/readability (JSDOMParser.js); it has no type declarations of its own. */
declare module '@mozilla/readability/JSDOMParser' {
  class JSDOMParser {
    /** Set when the markup was not well formed; parsing goes on regardless. */
    errorState: string;
    /** Called for each markup error; logs it to the console unless replaced. */
    error(message: string): void;
    parse(html: string, url?: string): Document;
  }
  export = JSDOMParser;
}
