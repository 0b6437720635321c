export const a = "common";
