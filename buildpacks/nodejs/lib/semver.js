// npm's semver ranges (the grammar of node-semver 7, strict mode, prereleases only when a
// comparator names one), for the Node.js buildpack's runtime step: which Node.js, npm, yarn or
// pnpm version an app's package.json asks for. No dependencies: it runs on the stack's node
// before anything is installed. The same rewriting steps as node-semver, in the same order,
// because its quirks are what apps were tested against (`>= 1.2`, `~> 1.2`, `v=1.x`, `1.x ||`).
"use strict";

// A range longer than this is refused before any regex sees it (node-semver's MAX_LENGTH).
const MAX_LENGTH = 256;

const NUMERIC = "0|[1-9]\\d*";
const NON_NUMERIC = "\\d*[a-zA-Z-][a-zA-Z0-9-]*";
const MAIN = `(${NUMERIC})\\.(${NUMERIC})\\.(${NUMERIC})`;
const PRE_ID = `(?:${NON_NUMERIC}|${NUMERIC})`;
const PRE = `(?:-(${PRE_ID}(?:\\.${PRE_ID})*))`;
const BUILD_ID = "[a-zA-Z0-9-]+";
const BUILD = `(?:\\+(${BUILD_ID}(?:\\.${BUILD_ID})*))`;
const FULL_PLAIN = `v?${MAIN}${PRE}?${BUILD}?`;
const LOOSE_PLAIN = `[v=\\s]*(\\d+)\\.(\\d+)\\.(\\d+)(?:-?((?:\\d+|${NON_NUMERIC})(?:\\.(?:\\d+|${NON_NUMERIC}))*))?${BUILD}?`;
const GTLT = "((?:<|>)?=?)";
const XR_ID = `${NUMERIC}|x|X|\\*`;
const XR_PLAIN = `[v=\\s]*(${XR_ID})(?:\\.(${XR_ID})(?:\\.(${XR_ID})(?:${PRE})?${BUILD}?)?)?`;

const RE = {
  full: new RegExp(`^${FULL_PLAIN}$`),
  xrange: new RegExp(`^${GTLT}\\s*${XR_PLAIN}$`),
  tilde: new RegExp(`^(?:~>?)${XR_PLAIN}$`),
  caret: new RegExp(`^(?:\\^)${XR_PLAIN}$`),
  tildeTrim: /(\s*)(?:~>?)\s+/g,
  caretTrim: /(\s*)(?:\^)\s+/g,
  comparatorTrim: new RegExp(`(\\s*)${GTLT}\\s*(${LOOSE_PLAIN}|${XR_PLAIN})`, "g"),
  comparator: new RegExp(`^${GTLT}\\s*(${FULL_PLAIN})$|^$`),
  hyphen: new RegExp(`^\\s*(${XR_PLAIN})\\s+-\\s+(${XR_PLAIN})\\s*$`),
  star: /(<|>)?=?\s*\*/,
  build: new RegExp(BUILD, "g"),
};

const isX = (id) => !id || id.toLowerCase() === "x" || id === "*";
// `*.1.2` and `1.x.2` are not ranges: a number after a wildcard.
const invalidXOrder = (M, m, p) => (isX(M) && !isX(m)) || (isX(m) && p && !isX(p));

// A version: {major, minor, patch, prerelease: [string|number]}; null when not strict semver.
function parseVersion(text) {
  if (typeof text !== "string" || text.length > MAX_LENGTH) return null;
  const m = text.trim().match(RE.full);
  if (!m) return null;
  const numbers = [m[1], m[2], m[3]].map(Number);
  if (numbers.some((n) => n > Number.MAX_SAFE_INTEGER)) return null;
  const prerelease = m[4]
    ? m[4].split(".").map((id) => (/^[0-9]+$/.test(id) ? Number(id) : id))
    : [];
  return { major: numbers[0], minor: numbers[1], patch: numbers[2], prerelease };
}

function compareIdentifiers(a, b) {
  const aNumber = typeof a === "number";
  const bNumber = typeof b === "number";
  if (aNumber && bNumber) return a === b ? 0 : a < b ? -1 : 1;
  if (aNumber) return -1;
  if (bNumber) return 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

// Semver precedence: -1, 0 or 1 (build metadata ignored).
function compare(a, b) {
  for (const key of ["major", "minor", "patch"]) {
    if (a[key] !== b[key]) return a[key] < b[key] ? -1 : 1;
  }
  if (a.prerelease.length && !b.prerelease.length) return -1;
  if (!a.prerelease.length && b.prerelease.length) return 1;
  for (let i = 0; ; i++) {
    const x = a.prerelease[i];
    const y = b.prerelease[i];
    if (x === undefined && y === undefined) return 0;
    if (y === undefined) return 1;
    if (x === undefined) return -1;
    const order = compareIdentifiers(x, y);
    if (order !== 0) return order;
  }
}

function hyphenReplace(_whole, from, fM, fm, fp, fpr, _fb, to, tM, tm, tp, tpr) {
  if (isX(fM)) from = "";
  else if (isX(fm)) from = `>=${fM}.0.0`;
  else if (isX(fp)) from = `>=${fM}.${fm}.0`;
  else from = `>=${from}`;
  if (isX(tM)) to = "";
  else if (isX(tm)) to = `<${+tM + 1}.0.0-0`;
  else if (isX(tp)) to = `<${tM}.${+tm + 1}.0-0`;
  else if (tpr) to = `<=${tM}.${tm}.${tp}-${tpr}`;
  else to = `<=${to}`;
  return `${from} ${to}`.trim();
}

function replaceTilde(comp) {
  return comp.replace(RE.tilde, (_, M, m, p, pr) => {
    if (isX(M)) return "";
    if (isX(m)) return `>=${M}.0.0 <${+M + 1}.0.0-0`;
    if (isX(p)) return `>=${M}.${m}.0 <${M}.${+m + 1}.0-0`;
    if (pr) return `>=${M}.${m}.${p}-${pr} <${M}.${+m + 1}.0-0`;
    return `>=${M}.${m}.${p} <${M}.${+m + 1}.0-0`;
  });
}

function replaceCaret(comp) {
  return comp.replace(RE.caret, (_, M, m, p, pr) => {
    if (isX(M)) return "";
    if (isX(m)) return `>=${M}.0.0 <${+M + 1}.0.0-0`;
    if (isX(p)) {
      return M === "0" ? `>=${M}.${m}.0 <${M}.${+m + 1}.0-0` : `>=${M}.${m}.0 <${+M + 1}.0.0-0`;
    }
    const low = pr ? `>=${M}.${m}.${p}-${pr}` : `>=${M}.${m}.${p}`;
    if (M === "0") {
      return m === "0" ? `${low} <${M}.${m}.${+p + 1}-0` : `${low} <${M}.${+m + 1}.0-0`;
    }
    return `${low} <${+M + 1}.0.0-0`;
  });
}

function replaceXRange(comp) {
  return comp.trim().replace(RE.xrange, (whole, gtlt, M, m, p) => {
    if (invalidXOrder(M, m, p)) return whole;
    const xM = isX(M);
    const xm = xM || isX(m);
    const xp = xm || isX(p);
    if (gtlt === "=" && xp) gtlt = "";
    if (xM) return gtlt === ">" || gtlt === "<" ? "<0.0.0-0" : "*";
    if (gtlt && xp) {
      if (xm) m = 0;
      p = 0;
      let pr = "";
      if (gtlt === ">") {
        gtlt = ">=";
        if (xm) {
          M = +M + 1;
          m = 0;
        } else {
          m = +m + 1;
        }
      } else if (gtlt === "<=") {
        gtlt = "<";
        if (xm) M = +M + 1;
        else m = +m + 1;
      }
      if (gtlt === "<") pr = "-0";
      return `${gtlt}${M}.${m}.${p}${pr}`;
    }
    if (xm) return `>=${M}.0.0 <${+M + 1}.0.0-0`;
    if (xp) return `>=${M}.${m}.0 <${M}.${+m + 1}.0-0`;
    return whole;
  });
}

function parseComparator(comp) {
  comp = comp.trim().split(/\s+/).map(replaceCaret).join(" ");
  comp = comp.trim().split(/\s+/).map(replaceTilde).join(" ");
  comp = comp.split(/\s+/).map(replaceXRange).join(" ");
  return comp.trim().replace(RE.star, "");
}

// One comparator: {operator: "", "<", "<=", ">", ">=", version} or null (any version).
function comparator(text) {
  const m = text.trim().split(/\s+/).join(" ").match(RE.comparator);
  if (!m) throw new Error(`"${text}" is not a comparator`);
  if (!m[2]) return null;
  const version = parseVersion(m[2]);
  if (!version) throw new Error(`"${m[2]}" is not a version`);
  return { operator: m[1] === "=" ? "" : m[1], version };
}

const isNullSet = (alternative) =>
  alternative.some(
    (c) =>
      c !== null &&
      c.operator === "<" &&
      c.version.major === 0 &&
      c.version.minor === 0 &&
      c.version.patch === 0 &&
      c.version.prerelease.length === 1 &&
      c.version.prerelease[0] === 0,
  );

function parseAlternative(text) {
  // Build metadata never matters to a range: gone before anything else reads it.
  let range = text.replace(RE.build, "");
  range = range.replace(RE.hyphen, hyphenReplace);
  range = range.replace(RE.comparatorTrim, "$1$2$3");
  range = range.replace(RE.tildeTrim, "$1~");
  range = range.replace(RE.caretTrim, "$1^");
  return range
    .split(" ")
    .map(parseComparator)
    .join(" ")
    .split(/\s+/)
    // `>=0.0.0` is any version, which matters for prereleases (node-semver's replaceGTE0)
    .map((c) => (/^\s*>=\s*0\.0\.0\s*$/.test(c) ? "" : c))
    .map(comparator);
}

// A range: an array of alternatives, each an array of comparators (null = any). Throws an
// Error saying what is wrong when TEXT is not an npm semver range.
function parseRange(text) {
  if (typeof text !== "string") throw new Error("a range must be a string");
  if (text.length > MAX_LENGTH) throw new Error(`a range must be at most ${MAX_LENGTH} characters`);
  const raw = text.trim().split(/\s+/).join(" ");
  let alternatives = raw.split("||").map((part) => parseAlternative(part.trim()));
  // As node-semver: an alternative that allows nothing is dropped, and one that allows any
  // version stands for the whole range (so `1.2.3-beta || *` refuses prereleases).
  if (alternatives.length > 1) {
    const possible = alternatives.filter((a) => !isNullSet(a));
    alternatives = possible.length ? possible : [alternatives[0]];
    const any = alternatives.find((a) => a.every((c) => c === null));
    if (alternatives.length > 1 && any) alternatives = [any];
  }
  return alternatives;
}

function testComparator(c, version) {
  if (c === null) return true;
  const order = compare(version, c.version);
  switch (c.operator) {
    case "":
      return order === 0;
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case ">=":
      return order >= 0;
    default:
      return false;
  }
}

function testAlternative(comparators, version) {
  if (!comparators.every((c) => testComparator(c, version))) return false;
  if (!version.prerelease.length) return true;
  // A prerelease matches only when a comparator names a prerelease of the same x.y.z.
  return comparators.some(
    (c) =>
      c !== null &&
      c.version.prerelease.length > 0 &&
      c.version.major === version.major &&
      c.version.minor === version.minor &&
      c.version.patch === version.patch,
  );
}

// Whether VERSION (a string) satisfies RANGE (a string or a parsed range).
function satisfies(version, range) {
  const parsed = typeof range === "string" ? parseRange(range) : range;
  const v = typeof version === "string" ? parseVersion(version) : version;
  if (!v) return false;
  return parsed.some((alternative) => testAlternative(alternative, v));
}

// The newest of VERSIONS (strings) satisfying RANGE, or null.
function maxSatisfying(versions, range) {
  const parsed = parseRange(range);
  let best = null;
  let bestText = null;
  for (const text of versions) {
    const v = parseVersion(text);
    if (!v || !satisfies(v, parsed)) continue;
    if (best === null || compare(v, best) > 0) {
      best = v;
      bestText = text;
    }
  }
  return bestText;
}

// Whether TEXT is a range (true) or not (false).
function validRange(text) {
  try {
    parseRange(text);
    return true;
  } catch (_) {
    return false;
  }
}

module.exports = { parseVersion, compare, parseRange, satisfies, maxSatisfying, validRange };
