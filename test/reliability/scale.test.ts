import { describeScaleOut } from "./scale-out.ts";

describeScaleOut({ redisName: "one Redis", database: 13 });
