export const nobodyImportsThis = true;
