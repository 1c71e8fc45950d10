// Apply LongCat LoRA: the strength slider starts at the chosen file's alpha/rank.
// Creating the node or choosing a file sets the default; a loaded workflow keeps its saved strength (ComfyUI
// restores widget values by assignment, which fires no callback). The slider's label says what the file holds
// ("alpha/rank 0.5", "not installed", "unreadable: <reason>"), its tooltip the details, the file widget's label the
// layout the file was written in (and the keys of other components it skips), and the node's context menu offers
// a way back to the file's default.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "LongCatLoraLoader";
const STRENGTH_HELP =
  "The real scale of up @ down. Choosing a file sets it to that file's alpha/rank, which reproduces the strength " +
  "it was trained for (0.5 for both official LongCat LoRAs).";
const logged = new Set(); // one console line per file and problem, however many nodes show it

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

function formatNumber(value) {
  return Number(value).toFixed(3).replace(/\.?0+$/, "");
}

// The route's message without the file name, up to its first detail: "truncated", "not a safetensors file".
function shortReason(name, message) {
  const base = name.split(/[\\/]/).pop();
  const problem = message.startsWith(`${base}: `) ? message.slice(base.length + 2) : message;
  const reason = problem.split(/[:(]/)[0].trim();
  return reason.length > 28 ? `${reason.slice(0, 27).trim()}…` : reason;
}

async function fetchInfo(name, tries = 10) {
  const response = await api.fetchApi(`/longcat/lora_info?name=${encodeURIComponent(name)}`);
  if (response.status === 503 && tries > 1) { // the route's readers are busy: ask again when it says
    const seconds = Number(response.headers.get("Retry-After")) || 1;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return fetchInfo(name, tries - 1);
  }
  const body = await response.json().catch(() => ({}));
  if (response.ok) return { info: body };
  if (response.status === 404) {
    return {
      label: "not installed",
      message: `${name} is not installed in models/loras`,
      tooltip: `${name} is not in models/loras. Download it (the workflow's Missing Models list links it), ` +
        "then press R to refresh the node lists.",
    };
  }
  const message = body.error || `HTTP ${response.status}`;
  return { label: `unreadable: ${shortReason(name, message)}`, message, tooltip: `${message}\n\n${STRENGTH_HELP}` };
}

function describe(info) {
  const ranks = info.ranks.join("/") || "dense";
  const exceptions = Object.keys(info.exceptions || {}).length;
  return `${info.name}: ${info.layout_title}, alpha/rank ${formatNumber(info.default_strength)}, rank ${ranks}, ` +
    `${info.format} format, ` +
    `${info.targets} modules` + (exceptions ? ` (${exceptions} with their own alpha/rank, kept in ratio)` : "") +
    `.\n\n${STRENGTH_HELP} Right-click the node to reset it.`;
}

const measure = document.createElement("canvas").getContext("2d");

// Widens a new node whose slider label would be cut: the frontend truncates label + value to the node's width.
function fitLabel(node, strength) {
  measure.font = app.canvas?.inner_text_font || "12px Arial";
  const text = measure.measureText(strength.label).width + measure.measureText(String(strength.value)).width;
  const needed = Math.ceil(text + 100); // margins, arrows and the label-value gap of a number widget
  if (node.size[0] < needed) node.setSize([needed, node.size[1]]);
}

// "WanVideoWrapper / Kijai LoRA; skips 12 text encoder keys": what the file is and what of it is not applied. The
// official layout with nothing skipped keeps the plain label, so the file name shows in full (the tooltip says).
function fileLabel(info) {
  const skipped = Object.entries(info.skipped_keys || {}).map(([component, n]) => `${n} ${component} keys`);
  if (info.layout === "native" && !skipped.length) return undefined;
  return `lora_name (${info.layout_title.split(" (")[0]} LoRA${skipped.length ? `; skips ${skipped.join(", ")}` : ""})`;
}

function showInfo(node, result) {
  const strength = widget(node, "strength");
  const lora = widget(node, "lora_name");
  if (!strength) return;
  if (lora) lora.label = result.info ? fileLabel(result.info) : undefined;
  node.longcatInfo = result.info || null;
  if (result.info) {
    strength.label = `strength (alpha/rank ${formatNumber(result.info.default_strength)})`;
    strength.tooltip = describe(result.info);
  } else {
    strength.label = `strength (${result.label})`;
    strength.tooltip = result.tooltip;
    const line = `LongCat LoRA: ${result.message}`;
    if (!logged.has(line)) {
      logged.add(line);
      console.warn(line);
    }
  }
  if (!node.longcatConfigured) fitLabel(node, strength);
  node.setDirtyCanvas(true, true);
}

function setStrength(node, value) {
  const strength = widget(node, "strength");
  if (!strength) return;
  strength.value = value;
  node.setDirtyCanvas(true, true);
}

// Fetches the file's info; sets the slider when `applyDefault`, otherwise only updates the label.
async function refresh(node, applyDefault) {
  const requested = widget(node, "lora_name")?.value;
  if (!requested) return;
  let result;
  try {
    result = await fetchInfo(requested);
  } catch (e) {
    result = { label: "unreadable: no answer", message: `${requested}: ${e.message}`, tooltip: e.message };
  }
  if (widget(node, "lora_name")?.value !== requested) return; // the user picked another file meanwhile
  showInfo(node, result);
  if (applyDefault && result.info) setStrength(node, result.info.default_strength);
}

app.registerExtension({
  name: "LongCat.LoraStrengthDefault",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      this.longcatConfigured = true; // loaded from a workflow: keep its saved strength and size
      return onConfigure?.apply(this, arguments);
    };

    const getExtraMenuOptions = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const result = getExtraMenuOptions?.apply(this, arguments);
      const info = this.longcatInfo;
      options.push({
        content: info ? `Reset strength to the file's alpha/rank (${formatNumber(info.default_strength)})`
          : "Reset strength to the file's alpha/rank",
        disabled: !info,
        callback: () => info && setStrength(this, info.default_strength),
      });
      return result;
    };
  },

  nodeCreated(node) {
    if (node.comfyClass !== NODE_TYPE) return;
    const lora = widget(node, "lora_name");
    if (lora) {
      const callback = lora.callback;
      lora.callback = function () {
        const result = callback?.apply(this, arguments);
        refresh(node, true);
        return result;
      };
    }
    // A new node gets the default of its initial file; a configured (loaded) one keeps its value. Configuration
    // runs synchronously right after creation, so by the next tick we know which case this is.
    setTimeout(() => refresh(node, !node.longcatConfigured), 0);
  },

  // "Refresh node definitions" (R) after a download: the labels follow the files now there.
  async refreshComboInNodes() {
    for (const node of app.graph?._nodes ?? []) {
      if (node.comfyClass === NODE_TYPE) refresh(node, false);
    }
  },
});
