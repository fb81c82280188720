// The agents' page: sign in with a key, price one home, upload a list. Plain JavaScript, no
// build step. The form is built from GET /v1/form (the feature contract: labels, bounds,
// defaults) and the zipcodes from GET /v1/models: no field rule is written here. The API judges
// every input; its 422 answers are shown next to the fields they name.
"use strict";

const KEY_STORE = "realty.apiKey"; // sessionStorage: this tab only, never in a URL
const COMPS = 5; // comparable sales asked for with each estimate
const MAX_ATTEMPTS = 40; // busy answers retried before giving up
const POLL_MS = 400; // batch progress

const GRADE_WORDS = {
  A: "High confidence",
  B: "Good confidence",
  C: "Moderate confidence",
  D: "Low confidence",
};
const GRADE_ADVICE = {
  A: "homes like this one are priced closely by the model.",
  B: "a sound starting point; check it against the comparable sales.",
  C: "check it against the comparable sales before quoting it.",
  D: "treat it as a rough guide only and lean on the comparable sales.",
};

const money = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  maximumFractionDigits: 0,
});
const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

const $ = (id) => document.getElementById(id);
// lastFull: the last estimate from all the details, to compare a basic one of the same home with.
const state = { key: null, spec: null, zipcodes: [], stopRetrying: false, lastFull: null };

// ---- talking to the API -------------------------------------------------------------------

class ApiError extends Error {
  /** An answer other than success, told in words (never the raw body). */
  constructor(status, detail, requestId) {
    super(typeof detail === "string" ? detail : "invalid input");
    this.status = status;
    this.detail = detail; // text, or a list of {loc, msg} field errors
    this.requestId = requestId;
  }

  get fieldErrors() {
    return Array.isArray(this.detail) ? this.detail : [];
  }

  words() {
    switch (this.status) {
      case 0:
        return "The service cannot be reached. Check your connection and try again.";
      case 401:
        return "This key was not accepted: it is wrong or has been revoked. Check it and try again.";
      case 403:
        return "This key is not allowed to do that. " + sentence(this.message);
      case 404:
        return "Not found: " + sentence(this.message);
      case 413:
        return "Too large: " + sentence(this.message);
      case 415:
        return "The service cannot read this kind of file: " + sentence(this.message);
      case 422:
        return this.fieldErrors.map((e) => sentence(e.msg)).join(" ") || sentence(this.message);
      case 429:
      case 503:
      case 504:
        return "The service is still busy. Please try again in a few minutes.";
      default:
        return (
          "Something went wrong on our side; please try again." +
          (this.requestId ? ` If it keeps happening, quote request id ${this.requestId}.` : "")
        );
    }
  }
}

function sentence(text) {
  const s = String(text || "").trim();
  if (!s) return "";
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

async function readError(response) {
  try {
    const body = await response.json();
    const detail = typeof body.detail === "string" || Array.isArray(body.detail) ? body.detail : "";
    return new ApiError(response.status, detail, body.request_id || response.headers.get("x-request-id"));
  } catch {
    return new ApiError(response.status, "", response.headers.get("x-request-id"));
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const BUSY_WORDS = {
  0: "The service cannot be reached right now.",
  429: "Too many requests from this key right now.",
  503: "The service is busy right now: every price estimator is occupied or restarting.",
  504: "The service is busy right now: the estimate took too long.",
};

/** Say once per attempt (a live region: no per-second countdown to read out) that the page
 * will try again, then wait, unless the agent stops it. */
async function waitBusy(status, seconds, attempt) {
  const stop = $("notice-stop");
  stop.hidden = false;
  showNotice(`${BUSY_WORDS[status]} Trying again in ${seconds} s (attempt ${attempt + 1}).`, "busy");
  for (let waited = 0; waited < seconds * 1000 && !state.stopRetrying; waited += 250) {
    await sleep(250);
  }
  stop.hidden = true;
}

/** fetch with the key; busy answers (429, 503, 504, no connection) are retried after their
 * Retry-After, saying so on the page. Resolves to the Response of a 2xx, else throws ApiError. */
async function api(path, { method = "GET", body, type, accept, retry = true, key } = {}) {
  const headers = { Authorization: `Bearer ${key || state.key}` };
  if (type) headers["Content-Type"] = type;
  if (accept) headers.Accept = accept;
  state.stopRetrying = false;
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetch(path, { method, body, headers, cache: "no-store", credentials: "omit" });
    } catch {
      response = null;
    }
    const status = response ? response.status : 0;
    if (response && response.ok) {
      if (attempt > 1) hideNotice();
      return response;
    }
    const busy = status === 0 || status === 429 || status === 503 || status === 504;
    if (busy && retry && attempt < MAX_ATTEMPTS && !state.stopRetrying) {
      const after = Number(response && response.headers.get("retry-after"));
      const seconds = Math.min(Math.max(Number.isFinite(after) && after > 0 ? after : 2, 1), 15);
      await waitBusy(status, seconds, attempt);
      if (!state.stopRetrying) continue;
    }
    if (attempt > 1) hideNotice();
    const error = response ? await readError(response) : new ApiError(0, "");
    if (status === 401 && state.key) {
      signOut("Your key is no longer accepted (wrong or revoked). Please sign in again.");
    }
    throw error;
  }
}

function showNotice(text, kind) {
  $("notice-text").textContent = text;
  $("notice").dataset.kind = kind || "info";
  $("notice").hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
  $("notice-stop").hidden = true;
}

// ---- signing in -----------------------------------------------------------------------------

async function signIn(key, { quiet = false } = {}) {
  const error = $("key-error");
  error.hidden = true;
  $("key").removeAttribute("aria-invalid");
  if (!key) {
    showKeyError("Type your API key first.");
    return;
  }
  $("sign-in-button").disabled = true;
  try {
    const spec = await (await api("/v1/form", { key })).json();
    const models = await (await api("/v1/models", { key })).json();
    const active = models.find((m) => m.active) || models[0];
    state.key = key;
    state.spec = spec;
    state.zipcodes = active ? [...active.zipcodes].sort() : [];
    sessionStorage.setItem(KEY_STORE, key);
    $("key").value = "";
    showSignedIn();
    if (!quiet) $("estimate-title").focus();
  } catch (e) {
    sessionStorage.removeItem(KEY_STORE);
    showKeyError(e instanceof ApiError ? e.words() : "The page could not sign you in; try again.");
  } finally {
    $("sign-in-button").disabled = false;
  }
}

function showKeyError(text) {
  $("key-error").textContent = text;
  $("key-error").hidden = false;
  $("key").setAttribute("aria-invalid", "true");
  $("key").focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  state.spec = null;
  state.lastFull = null;
  state.stopRetrying = true;
  $("signed-in").hidden = true;
  $("who").hidden = true;
  $("answer").hidden = true;
  $("sign-in").hidden = false;
  $("key").value = "";
  $("key-error").hidden = !message;
  $("key-error").textContent = message || "";
  hideNotice();
  $("key").focus();
}

function showSignedIn() {
  const caller = state.spec.caller;
  $("who-name").textContent = caller.name;
  $("who-role").textContent = caller.role;
  $("who").hidden = false;
  $("sign-in").hidden = true;
  $("signed-in").hidden = false;
  buildForm();
  $("upload-denied").hidden = caller.can_upload;
  $("upload-area").hidden = !caller.can_upload;
  if (caller.can_upload) setTemplate();
}

// ---- the form, from the contract ------------------------------------------------------------

function rangeWords(field) {
  const fmt = (v) => (field.name === "yr_built" || field.name === "yr_renovated" ? String(v) : count.format(v));
  if (field.min !== null && field.max !== null) return `From ${fmt(field.min)} to ${fmt(field.max)}.`;
  if (field.min !== null) return `At least ${fmt(field.min)}.`;
  if (field.max !== null) return `At most ${fmt(field.max)}.`;
  return "";
}

function buildForm() {
  const box = $("fields");
  box.replaceChildren();
  for (const field of state.spec.fields) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    wrap.dataset.field = field.name;
    wrap.dataset.minimal = String(field.minimal);
    const id = `f-${field.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = field.label;
    let input;
    if (field.kind === "zipcode") {
      input = document.createElement("select");
      for (const zip of state.zipcodes) input.add(new Option(zip, zip));
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.inputMode = field.step === "1" ? "numeric" : "decimal";
      input.step = field.step;
      if (field.min !== null) input.min = String(field.min);
      if (field.max !== null) input.max = String(field.max);
    }
    input.id = id;
    input.name = field.name;
    input.dataset.kind = field.kind;
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.id = `h-${field.name}`;
    hint.textContent = `${field.hint} ${rangeWords(field)}`.trim();
    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `e-${field.name}`;
    error.hidden = true;
    input.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
    wrap.append(label, input, hint, error);
    box.append(wrap);
  }
  resetForm();
  applyVariant();
}

function resetForm() {
  for (const field of state.spec.fields) {
    const input = $(`f-${field.name}`);
    const typical = String(field.default);
    if (input.tagName === "SELECT" && !state.zipcodes.includes(typical)) {
      input.selectedIndex = 0;
    } else {
      input.value = typical;
    }
  }
  clearErrors();
}

function variant() {
  return document.querySelector('input[name="variant"]:checked').value;
}

function applyVariant() {
  const minimal = variant() === "minimal";
  for (const wrap of $("fields").children) {
    const shown = !minimal || wrap.dataset.minimal === "true";
    wrap.hidden = !shown;
    wrap.querySelector("input, select").disabled = !shown;
  }
}

function clearErrors() {
  for (const error of document.querySelectorAll("#fields .field-error")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const input of document.querySelectorAll("#fields [aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
  $("form-error").hidden = true;
}

/** The values as typed: numbers where they read as numbers, else the text itself, so that the
 * API names what is wrong with it (there is no second copy of the rules here). */
function houseFromForm() {
  const house = {};
  for (const field of state.spec.fields) {
    const input = $(`f-${field.name}`);
    if (input.disabled) continue;
    const raw = input.value.trim();
    if (field.kind === "zipcode") house[field.name] = raw;
    else if (raw === "") house[field.name] = null;
    else house[field.name] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return house;
}

function labelOf(name) {
  const field = state.spec.fields.find((f) => f.name === name);
  return field ? field.label : name;
}

/** 422 field errors beside their fields (loc ["body", field]); the rest above the button. */
function showFieldErrors(error) {
  const general = [];
  let first = null;
  for (const problem of error.fieldErrors) {
    const loc = problem.loc || [];
    const name = loc[0] === "body" && loc.length === 2 ? loc[1] : null;
    const box = name && $(`e-${name}`);
    if (box && !$(`f-${name}`).disabled) {
      box.textContent = (box.textContent ? box.textContent + " " : "") + sentence(inAgentWords(problem.msg));
      box.hidden = false;
      $(`f-${name}`).setAttribute("aria-invalid", "true");
      first = first || $(`f-${name}`);
    } else {
      general.push(sentence(inAgentWords(problem.msg)));
    }
  }
  const summary = first ? "Please check the fields marked below." : "";
  showFormError([summary, ...general].filter(Boolean).join(" ") || error.words());
  if (first) first.focus();
}

function showFormError(text) {
  $("form-error").textContent = text;
  $("form-error").hidden = false;
}

async function estimate(event) {
  event.preventDefault();
  clearErrors();
  const house = houseFromForm();
  const path = variant() === "minimal" ? "/v1/predict/minimal" : "/v1/predict";
  const button = $("estimate");
  button.disabled = true;
  button.textContent = "Estimating…";
  try {
    const response = await api(`${path}?explain=true&comps=${COMPS}`, {
      method: "POST",
      body: JSON.stringify(house),
      type: "application/json",
    });
    const answer = await response.json();
    const kind = variant();
    if (kind === "full") state.lastFull = { basics: basicsOf(house), answer };
    showAnswer(answer, house, kind);
  } catch (e) {
    if (!(e instanceof ApiError)) showFormError("The page could not show the answer; please try again.");
    else if (e.status === 422) showFieldErrors(e);
    else if (e.status !== 401) showFormError(e.words());
  } finally {
    button.disabled = false;
    button.textContent = "Estimate";
  }
}

// ---- the answer -----------------------------------------------------------------------------

function plural(n, one, many) {
  return `${count.format(n)} ${n === 1 ? one : many}`;
}

function summaryOf(house) {
  const parts = [];
  if (house.bedrooms != null) parts.push(plural(house.bedrooms, "bedroom", "bedrooms"));
  if (house.bathrooms != null) parts.push(plural(house.bathrooms, "bathroom", "bathrooms"));
  if (house.sqft_living != null) parts.push(`${count.format(house.sqft_living)} sq ft living area`);
  if (house.sqft_lot != null) parts.push(`${count.format(house.sqft_lot)} sq ft lot`);
  if (house.yr_built != null) parts.push(`built ${house.yr_built}`);
  if (house.zipcode) parts.push(`zip code ${house.zipcode}`);
  return "The home: " + parts.join(", ") + ".";
}

function monthWords(asOf) {
  if (!asOf) return null;
  const [year, month] = asOf.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, 1)).toLocaleString("en-US", {
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });
}

function showAnswer(answer, house, kind) {
  const section = $("answer");
  section.dataset.variant = kind;
  section.dataset.prediction = String(answer.prediction);
  $("home-summary").textContent = summaryOf(house);
  $("price").textContent = money.format(answer.prediction);

  const r80 = answer.interval_80;
  const r95 = answer.interval_95;
  if (r80) {
    const spread = (r80.high - r80.low) / 2 / answer.prediction;
    section.dataset.spread = spread.toFixed(4);
    $("range-text").textContent =
      `Likely sale price: ${money.format(r80.low)} to ${money.format(r80.high)} ` +
      `(8 in 10 homes like it sold within such a range)` +
      (r95 ? `; almost surely ${money.format(r95.low)} to ${money.format(r95.high)} (19 in 20).` : ".");
  } else {
    delete section.dataset.spread;
    $("range-text").textContent = "This model version gives no price range.";
  }
  drawRangeBar(answer);

  const grade = answer.confidence;
  section.dataset.grade = grade || "";
  const fsdWords =
    typeof answer.fsd === "number"
      ? ` The sale price typically lands within ±${Math.round(answer.fsd * 100)} % of the estimate (2 times in 3).`
      : "";
  if (grade && GRADE_WORDS[grade]) {
    $("confidence").replaceChildren(
      strong(`${GRADE_WORDS[grade]} (grade ${grade} of A to D)`),
      document.createTextNode(`: ${GRADE_ADVICE[grade]}${fsdWords}`),
    );
  } else if (r80) {
    const spread = Math.round(((r80.high - r80.low) / 2 / answer.prediction) * 100);
    $("confidence").replaceChildren(
      strong("Confidence"),
      document.createTextNode(
        `: this model version gives no grade; its likely range reaches about ±${spread} % around the estimate.`,
      ),
    );
  } else {
    $("confidence").textContent = "This model version gives no confidence grade.";
  }
  const note = $("certainty-note");
  note.hidden = kind !== "minimal";
  note.textContent = kind === "minimal" ? certaintyNote(answer, house) : "";

  const warnings = answer.warnings || [];
  $("warnings").replaceChildren(...warnings.map((w) => listItem(sentence(inAgentWords(w)))));
  $("warnings-box").hidden = warnings.length === 0;

  const factors = (answer.factors || []).slice(0, 5);
  $("factors").replaceChildren(...factors.map((f) => listItem(factorSentence(f))));
  $("factors-box").hidden = factors.length === 0;

  showComps(answer);

  const month = monthWords(answer.as_of);
  $("small-print").textContent =
    `Model ${answer.model_version} (${answer.model_kind})` +
    (month ? ` · priced in the market of ${month} (${answer.as_of})` : " · priced at the latest market the model knows") +
    ` · estimated ${new Date().toLocaleDateString("en-US", { dateStyle: "long" })}` +
    ` · request ${answer.request_id}` +
    " · an automated estimate, not an appraisal.";

  section.hidden = false;
  $("answer-title").focus();
}

/** The minimal fields of a house, as text: whether two estimates are of the same basic home. */
function basicsOf(house) {
  return JSON.stringify(state.spec.fields.filter((f) => f.minimal).map((f) => house[f.name]));
}

/** How sure an estimate is, in words: its FSD (the ± of 2 sales in 3) where it has one, else
 * half its 80 % range. */
function sureness(answer) {
  if (typeof answer.fsd === "number") {
    const grade = answer.confidence ? `, grade ${answer.confidence}` : "";
    return `typically within ±${Math.round(answer.fsd * 100)} %${grade}`;
  }
  const r = answer.interval_80;
  return r ? `likely range ±${Math.round(((r.high - r.low) / 2 / answer.prediction) * 100)} %` : null;
}

/** A basic estimate says it is less certain, with the full one's figures beside its own where
 * this home was just estimated from all the details too. */
function certaintyNote(answer, house) {
  const text =
    "Estimated from the 8 basic facts only: usually less certain than an estimate from all the details.";
  const full = state.lastFull && state.lastFull.basics === basicsOf(house) ? state.lastFull.answer : null;
  if (!full || sureness(answer) === null || sureness(full) === null) {
    return `${text} Add the other details for a closer figure.`;
  }
  return (
    `${text} From the basics: ${money.format(answer.prediction)}, ${sureness(answer)}. ` +
    `From all the details: ${money.format(full.prediction)}, ${sureness(full)}.`
  );
}

/** Column names in a message of the API replaced by the form's labels ("sqft_above 9,800 is
 * above…" becomes "Living area above ground (sq ft) 9,800 is above…"). */
function inAgentWords(text) {
  let words = String(text);
  const fields = [...state.spec.fields].sort((a, b) => b.name.length - a.name.length);
  for (const field of fields) {
    words = words.replace(new RegExp(`\\b${field.name}\\b`, "g"), field.label);
  }
  return words;
}

function strong(text) {
  const el = document.createElement("strong");
  el.textContent = text;
  return el;
}

function listItem(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function factorSentence(factor) {
  const what = sentence(factor.value).replace(/\.$/, "");
  // To the nearest $1,000: a factor is an explanation, not an amount to add up to the cent.
  const amount = money.format(Math.round(Math.abs(factor.effect_usd) / 1000) * 1000);
  if (Math.abs(factor.effect_usd) < 500) return `${what}: hardly changes the estimate.`;
  return factor.effect_usd > 0
    ? `${what}: raises the estimate by about ${amount}.`
    : `${what}: lowers the estimate by about ${amount}.`;
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawRangeBar(answer) {
  const box = $("range-bar");
  box.replaceChildren();
  const r80 = answer.interval_80;
  const r95 = answer.interval_95 || r80;
  if (!r80) return;
  const lo = Math.min(r95.low, r80.low) * 0.97;
  const hi = Math.max(r95.high, r80.high) * 1.03;
  const W = 600;
  const x = (v) => 10 + ((v - lo) / (hi - lo)) * (W - 20);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${W} 62`,
    role: "img",
    "aria-label":
      `Price range bar: ${money.format(r80.low)} to ${money.format(r80.high)} likely, ` +
      `estimate ${money.format(answer.prediction)}`,
    class: "range-svg",
  });
  svg.append(
    svgEl("rect", { x: 10, y: 18, width: W - 20, height: 14, rx: 7, class: "bar-track" }),
    svgEl("rect", { x: x(r95.low), y: 18, width: x(r95.high) - x(r95.low), height: 14, rx: 7, class: "bar-95" }),
    svgEl("rect", { x: x(r80.low), y: 18, width: x(r80.high) - x(r80.low), height: 14, rx: 7, class: "bar-80" }),
    svgEl("rect", { x: x(answer.prediction) - 2, y: 10, width: 4, height: 30, class: "bar-mark" }),
    svgEl("text", { x: x(answer.prediction), y: 8, "text-anchor": "middle", class: "bar-label bar-label-strong" },
      money.format(answer.prediction)),
    svgEl("text", { x: x(r80.low), y: 52, "text-anchor": "middle", class: "bar-label" }, money.format(r80.low)),
    svgEl("text", { x: x(r80.high), y: 52, "text-anchor": "middle", class: "bar-label" }, money.format(r80.high)),
  );
  box.append(svg);
  const legend = document.createElement("p");
  legend.className = "bar-legend";
  legend.append(
    swatch("bar-80"), document.createTextNode(" likely range (8 in 10)  "),
    swatch("bar-95"), document.createTextNode(" wider range (19 in 20)"),
  );
  box.append(legend);
}

function swatch(cls) {
  const s = document.createElement("span");
  s.className = `swatch ${cls}`;
  s.setAttribute("aria-hidden", "true");
  return s;
}

function showComps(answer) {
  const comps = answer.comps || [];
  const tbody = $("comps").tBodies[0];
  tbody.replaceChildren();
  const month = monthWords(answer.as_of);
  $("comps-adjusted-head").textContent = month ? `Price moved to ${month}` : "Price moved to today's market";
  for (const c of comps) {
    const row = tbody.insertRow();
    const cells = [
      c.sale_date,
      money.format(c.price),
      money.format(c.price_as_of),
      c.distance_miles == null ? "same zip code" : `${c.distance_miles.toFixed(1)} mi`,
      count.format(c.bedrooms),
      count.format(c.bathrooms),
      `${count.format(c.sqft_living)} sq ft`,
      c.grade == null ? "–" : count.format(c.grade),
      `${Math.round(c.similarity * 100)} %`,
    ];
    for (const text of cells) row.insertCell().textContent = text;
  }
  $("comps-table-box").hidden = comps.length === 0;
  $("comps-box").hidden = comps.length === 0;
  $("no-comps").hidden = comps.length > 0;
  $("no-comps").textContent = "This model version gives no comparable sales.";
  drawScatter(answer, comps);
}

/** Round values spanning lo..hi for a chart's axis (steps of 1, 2 or 5 times a power of 10). */
function niceTicks(lo, hi, wanted = 4) {
  const raw = (hi - lo) / wanted;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.floor(lo / step) * step; t < hi + step; t += step) {
    ticks.push(Number(t.toPrecision(12)));
    if (t >= hi) break;
  }
  return ticks;
}

function shortMoney(value) {
  if (value === 0) return "$0";
  return value >= 1e6 ? `$${count.format(value / 1e6)}M` : `$${Math.round(value / 1000)}k`;
}

/** Distance against the price moved to the estimate's month, drawn here in SVG (no map, no
 * library); the table above is its accessible equivalent. */
function drawScatter(answer, comps) {
  const box = $("comps-plot");
  box.replaceChildren();
  const placed = comps.filter((c) => c.distance_miles != null);
  if (comps.length === 0) return;
  if (placed.length === 0) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "The basic estimate knows no exact place: these sales are from the same zip code, so no distance chart.";
    box.append(p);
    return;
  }
  const W = 360;
  const H = 210;
  const left = 74;
  const bottom = 38;
  const prices = placed.map((c) => c.price_as_of).concat([answer.prediction]);
  const pad = Math.max((Math.max(...prices) - Math.min(...prices)) * 0.08, answer.prediction * 0.03);
  const priceTicks = niceTicks(Math.min(...prices) - pad, Math.max(...prices) + pad, 6);
  const pLo = priceTicks[0];
  const pHi = priceTicks[priceTicks.length - 1];
  const distanceTicks = niceTicks(0, Math.max(...placed.map((c) => c.distance_miles), 0.1) * 1.1);
  const dHi = distanceTicks[distanceTicks.length - 1];
  const x = (d) => left + (d / dHi) * (W - left - 12);
  const y = (p) => 10 + (1 - (p - pLo) / (pHi - pLo)) * (H - bottom - 10);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Chart of ${placed.length} comparable sales: distance from the home against price moved to the estimate's month; details in the table.`,
    class: "scatter",
  });
  svg.append(
    svgEl("line", { x1: left, y1: H - bottom, x2: W - 8, y2: H - bottom, class: "axis" }),
    svgEl("line", { x1: left, y1: 10, x2: left, y2: H - bottom, class: "axis" }),
    svgEl("text", { x: (left + W) / 2, y: H - 4, "text-anchor": "middle", class: "axis-label" }, "distance from the home (miles)"),
  );
  for (const p of priceTicks) {
    svg.append(
      svgEl("line", { x1: left, y1: y(p), x2: W - 8, y2: y(p), class: "grid" }),
      svgEl("text", { x: left - 6, y: y(p) + 4, "text-anchor": "end", class: "axis-label" }, shortMoney(p)),
    );
  }
  for (const d of distanceTicks) {
    svg.append(svgEl("text", { x: x(d), y: H - bottom + 14, "text-anchor": "middle", class: "axis-label" }, count.format(d)));
  }
  svg.append(
    svgEl("line", { x1: left, y1: y(answer.prediction), x2: W - 8, y2: y(answer.prediction), class: "estimate-line" }),
    svgEl("text", { x: W - 10, y: y(answer.prediction) - 4, "text-anchor": "end", class: "axis-label" },
      `this home: ${money.format(answer.prediction)}`),
  );
  for (const c of placed) {
    const dot = svgEl("circle", { cx: x(c.distance_miles), cy: y(c.price_as_of), r: 5, class: "comp-dot" });
    dot.append(svgEl("title", {}, `${c.sale_date}: ${money.format(c.price_as_of)}, ${c.distance_miles.toFixed(1)} mi`));
    svg.append(dot);
  }
  box.append(svg);
}

// ---- a list of homes ------------------------------------------------------------------------

function setTemplate() {
  const fields = state.spec.fields;
  const text = fields.map((f) => f.name).join(",") + "\n" + fields.map((f) => f.default).join(",") + "\n";
  const link = $("template");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
}

function uploadError(text) {
  $("upload-error").textContent = text;
  $("upload-error").hidden = !text;
}

/** A 422 of a CSV upload in words: rows are numbered from 0 in the order sent, line = row + 2. */
function batchErrorWords(error) {
  if (error.status !== 422) {
    return error.status === 403 ? "This key cannot upload lists; ask for a batch key." : error.words();
  }
  const lines = error.fieldErrors.map((problem) => {
    const loc = problem.loc || [];
    if (loc[1] === "rows" && typeof loc[2] === "number") {
      const where = `Row ${loc[2] + 1} of the file (line ${loc[2] + 2})`;
      return loc.length > 3 ? `${where}, ${labelOf(loc[3])} (${loc[3]}): ${problem.msg}` : `${where}: ${problem.msg}`;
    }
    return sentence(problem.msg);
  });
  return "The file was not accepted. " + lines.map(sentence).join(" ");
}

async function upload(file) {
  uploadError("");
  if (!file) return;
  const job = $("job");
  const download = $("download");
  download.hidden = true;
  if (download.href.startsWith("blob:")) URL.revokeObjectURL(download.href);
  $("job-summary").hidden = true;
  $("job-file").textContent = `Sending ${file.name}…`;
  $("progress").value = 0;
  $("progress").max = 1;
  $("progress-text").textContent = "";
  job.hidden = false;
  let accepted;
  try {
    accepted = await (await api("/v1/batch", { method: "POST", body: file, type: "text/csv" })).json();
  } catch (e) {
    job.hidden = true;
    uploadError(e instanceof ApiError ? batchErrorWords(e) : "The file could not be sent; try again.");
    return;
  }
  $("job-file").textContent = `${file.name}: ${plural(accepted.rows_total, "home", "homes")}, model ${accepted.model_version}.`;
  const path = new URL(accepted.status_url, location.href).pathname;
  try {
    let status;
    for (;;) {
      status = await (await api(path)).json();
      showProgress(status);
      if (status.status === "succeeded" || status.status === "failed") break;
      await sleep(POLL_MS);
    }
    if (status.status === "failed") {
      uploadError(`The list could not be priced: ${sentence(status.error || "the job failed")}`);
      return;
    }
    const results = status.results || [];
    const warned = results.filter((r) => (r.warnings || []).length > 0).length;
    $("job-summary").textContent =
      `All ${plural(results.length, "home", "homes")} priced` +
      (warned ? `; ${plural(warned, "estimate has", "estimates have")} a warning (see the warnings column).` : ".");
    $("job-summary").hidden = false;
    const csv = await (await api(`${path}?format=csv`, { accept: "text/csv" })).blob();
    download.href = URL.createObjectURL(csv);
    download.download = file.name.replace(/\.csv$/i, "") + "-estimates.csv";
    download.hidden = false;
    download.focus();
  } catch (e) {
    uploadError(e instanceof ApiError ? e.words() : "The results could not be fetched; try again.");
  }
}

function showProgress(status) {
  const bar = $("progress");
  bar.max = Math.max(status.rows_total, 1);
  bar.value = status.rows_done;
  bar.dataset.rowsDone = String(status.rows_done);
  $("progress-text").textContent = `${count.format(status.rows_done)} of ${count.format(status.rows_total)} homes priced (${status.status}).`;
}

// ---- wiring ---------------------------------------------------------------------------------

function init() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("key").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("notice-stop").addEventListener("click", () => {
    state.stopRetrying = true;
  });
  $("house-form").addEventListener("submit", estimate);
  $("reset").addEventListener("click", resetForm);
  for (const radio of document.querySelectorAll('input[name="variant"]')) {
    radio.addEventListener("change", () => {
      clearErrors();
      applyVariant();
    });
  }
  $("print").addEventListener("click", () => window.print());

  const zone = $("drop-zone");
  $("file").addEventListener("change", (event) => {
    upload(event.target.files[0]);
    event.target.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    upload(event.dataTransfer && event.dataTransfer.files[0]);
  });

  // A file dropped beside the zone must not replace the page (the browser would open it).
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }

  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) signIn(saved, { quiet: true });
  else $("sign-in").hidden = false;
}

document.addEventListener("DOMContentLoaded", init);
