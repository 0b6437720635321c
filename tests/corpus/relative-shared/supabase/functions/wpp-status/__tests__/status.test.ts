import { fixture } from "./fixtures.ts";
console.log(fixture);
