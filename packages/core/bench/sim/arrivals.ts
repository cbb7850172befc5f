/**
 * Arrival patterns: when each upload happens, to which key, and to which burst it belongs.
 *
 * A "burst" is an episode the generator creates on purpose (a client dumping a folder); uploads outside any burst
 * (the background of pattern 3, every upload of pattern 2) have burst -1. "Runs per burst" then means: for each
 * burst, the number of Glue runs whose manifest held at least one of its uploads, averaged over the bursts. A run
 * that mixes two bursts counts for both, so the figure is what one burst costs in runs, not a partition of runs.
 */
import { Rng } from "./prng.js";

export interface Arrivals {
  readonly name: string;
  readonly title: string;
  readonly count: number;
  /** Upload second (from the start of the simulation), ascending. */
  readonly times: Uint32Array;
  /** Key index of each upload; uploads of one key are versions of the same object. */
  readonly keyOf: Int32Array;
  readonly keyCount: number;
  /** Burst of each upload, -1 for none. */
  readonly burstOf: Int16Array;
  readonly burstSizes: readonly number[];
  /** Seconds between the first and the last upload, plus one. */
  readonly spanSeconds: number;
  /** Folder under input/ for this pattern's keys. */
  readonly folder: string;
}

export function keyName(a: Pick<Arrivals, "folder">, key: number): string {
  return `input/${a.folder}/f${key.toString().padStart(7, "0")}.csv`;
}

/** Sorts (time, burst) pairs by time, keeping the burst with each (burst < 1024, time < 2^32). */
function build(
  name: string,
  title: string,
  folder: string,
  times: number[],
  bursts: number[],
  keys: number[] | null,
): Arrivals {
  const n = times.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (times[a] as number) - (times[b] as number) || a - b);
  const t = new Uint32Array(n);
  const burstOf = new Int16Array(n);
  const keyOf = new Int32Array(n);
  const sizes = new Map<number, number>();
  order.forEach((src, i) => {
    t[i] = times[src] as number;
    const b = bursts[src] as number;
    burstOf[i] = b;
    if (b >= 0) sizes.set(b, (sizes.get(b) ?? 0) + 1);
    keyOf[i] = keys ? (keys[src] as number) : i;
  });
  const burstSizes = [...sizes.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
  const keyCount = keys ? new Set(keys).size : n;
  const spanSeconds = n === 0 ? 0 : (t[n - 1] as number) - (t[0] as number) + 1;
  return { name, title, count: n, times: t, keyOf, keyCount, burstOf, burstSizes, spanSeconds, folder };
}

/** 1. One burst: `files` uploads spread evenly at random over `overSeconds`. */
export function oneBurst(seed: number, files = 10_000, overSeconds = 30): Arrivals {
  const rng = Rng.stream(seed, "arrivals/burst");
  const times = Array.from({ length: files }, () => rng.int(overSeconds));
  return build(
    "burst",
    `one burst of ${files.toLocaleString("en-US")} files (over ${overSeconds} s)`,
    "burst",
    times,
    new Array(files).fill(0),
    null,
  );
}

/** 2. A steady trickle: one upload per second for `seconds`. */
export function steady(seconds = 3_600): Arrivals {
  const times = Array.from({ length: seconds }, (_, i) => i);
  return build("steady", `1 file/s for ${seconds / 3600} h`, "steady", times, new Array(seconds).fill(-1), null);
}

/**
 * 3. A day: `total` uploads, 40% as a uniform background (Poisson-like), 60% in `burstCount` bursts at random
 * times, each of random size (weights 0.2–1.8 × the mean) spread over 10–300 s.
 */
export function day(seed: number, total = 1_000_000, burstCount = 48): Arrivals {
  const rng = Rng.stream(seed, "arrivals/day");
  const daySeconds = 86_400;
  const inBursts = Math.round(total * 0.6);
  const weights = Array.from({ length: burstCount }, () => 0.2 + 1.6 * rng.next());
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * inBursts));
  sizes[0] = (sizes[0] as number) + inBursts - sizes.reduce((a, b) => a + b, 0);
  const times: number[] = [];
  const bursts: number[] = [];
  sizes.forEach((size, b) => {
    const length = rng.between(10, 300);
    const start = rng.int(daySeconds - length);
    for (let i = 0; i < size; i++) {
      times.push(start + rng.int(length));
      bursts.push(b);
    }
  });
  for (let i = times.length; i < total; i++) {
    times.push(rng.int(daySeconds));
    bursts.push(-1);
  }
  return build(
    "day",
    `${total.toLocaleString("en-US")} uploads over a day (${burstCount} bursts = 60%, background 40%)`,
    "day",
    times,
    bursts,
    null,
  );
}

/**
 * 4. A re-upload storm: `keys` keys, each uploaded `versions` times, 0–30 s apart (0 = twice within the same
 * second: same Last-Modified, different ETag), starting within the first minute. Runs last 60–180 s, so most
 * re-uploads land while the previous version of the key is pending or running.
 */
export function reuploadStorm(seed: number, keys = 200, versions = 20): Arrivals {
  const rng = Rng.stream(seed, "arrivals/storm");
  const times: number[] = [];
  const keyIds: number[] = [];
  for (let k = 0; k < keys; k++) {
    let t = rng.int(60);
    for (let v = 0; v < versions; v++) {
      times.push(t);
      keyIds.push(k);
      t += rng.int(31);
    }
  }
  return build(
    "storm",
    `re-upload storm: ${keys} keys × ${versions} versions, 0–30 s apart`,
    "storm",
    times,
    new Array(times.length).fill(0),
    keyIds,
  );
}

/**
 * 5. Single uploads to an idle pipeline: `count` uploads, each alone, `gapSeconds` apart (± a quarter), so every
 * one finds no run, no pending upload and an idle slot: the latency a user sees for one small file.
 */
export function idleSingles(seed: number, count = 300, gapSeconds = 1_800): Arrivals {
  const rng = Rng.stream(seed, "arrivals/idle");
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    times.push(t);
    t += gapSeconds + rng.int(Math.floor(gapSeconds / 2)) - Math.floor(gapSeconds / 4);
  }
  return build(
    "idle",
    `single upload to an idle pipeline, ${count} times (${gapSeconds / 60} min apart)`,
    "idle",
    times,
    new Array(count).fill(-1),
    null,
  );
}

/**
 * 6. The AWS-semantics mix (run on the fake AWS): a burst of `burst` files over 30 s, then one upload a second for
 * 30 min, and a re-upload storm of 50 keys × 8 versions 15 minutes in, half of them in the same second as the
 * previous version (same Last-Modified), the rest 5–40 s apart.
 */
export function awsMix(seed: number, burst = 2_000): Arrivals {
  const rng = Rng.stream(seed, "arrivals/aws");
  const times: number[] = [];
  const bursts: number[] = [];
  const keys: number[] = [];
  let nextKey = 0;
  for (let i = 0; i < burst; i++) {
    times.push(rng.int(30));
    bursts.push(0);
    keys.push(nextKey++);
  }
  for (let s = 0; s < 1_800; s++) {
    times.push(300 + s);
    bursts.push(-1);
    keys.push(nextKey++);
  }
  for (let k = 0; k < 50; k++) {
    const key = nextKey++;
    let t = 900 + rng.int(60);
    for (let v = 0; v < 8; v++) {
      times.push(t);
      bursts.push(1);
      keys.push(key);
      // Half the re-uploads follow within the same second, the rest 5–40 s later (recorded in between).
      t += rng.chance(0.5) ? 0 : rng.between(5, 40);
    }
  }
  return build(
    "aws",
    `AWS semantics: a burst of ${burst.toLocaleString("en-US")} files, 1 file/s for 30 min, 50 keys × 8 versions (half in the same second)`,
    "aws",
    times,
    bursts,
    keys,
  );
}
