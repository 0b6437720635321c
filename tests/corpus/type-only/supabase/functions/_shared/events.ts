export type Event = { name: string };
