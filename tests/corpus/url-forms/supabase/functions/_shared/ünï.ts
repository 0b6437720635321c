export const unicode = true;
