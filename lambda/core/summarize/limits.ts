/**
 * The most text one job summarizes, after extraction. Beyond it a document is
 * refused rather than cut: a summary of the first part would pass for a
 * summary of the whole. In a module of its own, without the extractors'
 * dependencies, so the API can check uploads against it at the door.
 */
export const MAX_TEXT_CHARACTERS = 2_000_000;
