export const spaced = true;
