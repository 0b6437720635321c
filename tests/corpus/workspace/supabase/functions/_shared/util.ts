import { log } from "shared-log";
export const util = () => log("util");
