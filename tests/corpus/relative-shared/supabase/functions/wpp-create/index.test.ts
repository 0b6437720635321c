import { assertEquals } from "jsr:@std/assert@1";
import { fakeRequest } from "../_shared/test-helpers.ts";
assertEquals(fakeRequest().method, "GET");
