export const a = "shared";
