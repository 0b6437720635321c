export const fixture = { status: "ok" };
