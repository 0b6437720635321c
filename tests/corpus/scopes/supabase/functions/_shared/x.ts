import { log } from "log";
export const x = () => log("v2");
