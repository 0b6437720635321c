export const log = (s: string) => console.log(s);
