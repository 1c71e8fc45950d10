// Apply LongCat LoRA: the strength slider starts at the chosen file's alpha/rank.
// Creating the node or choosing a file sets the default; a loaded workflow keeps its saved strength (ComfyUI
// restores widget values by assignment, which fires no callback). The node shows the file's alpha/rank and rank,
// the layout it was written in (and the keys of other components it skips), and its context menu offers a way
// back to the file's default.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "LongCatLoraLoader";

async function fetchInfo(name) {
  const response = await api.fetchApi(`/longcat/lora_info?name=${encodeURIComponent(name)}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

// "WanVideoWrapper / Kijai LoRA; skips 12 text encoder keys": what the file is and what of it is not applied.
function fileLabel(info) {
  const skipped = Object.entries(info.skipped_keys || {}).map(([component, n]) => `${n} ${component} keys`);
  return `lora_name (${info.layout_title.split(" (")[0]} LoRA${skipped.length ? `; skips ${skipped.join(", ")}` : ""})`;
}

function showInfo(node, info, error) {
  const strength = widget(node, "strength");
  const lora = widget(node, "lora_name");
  if (!strength) return;
  if (error) {
    strength.label = "strength (file unreadable)";
    if (lora) lora.label = `lora_name (not usable: ${error.message})`;
    node.longcatInfo = null;
  } else {
    const ratio = Number(info.default_strength).toFixed(3).replace(/\.?0+$/, "");
    strength.label = `strength (file alpha/rank ${ratio}, rank ${info.ranks.join("/") || "dense"})`;
    if (lora) lora.label = fileLabel(info);
    node.longcatInfo = info;
  }
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
  const lora = widget(node, "lora_name");
  if (!lora?.value) return;
  const requested = lora.value;
  try {
    const info = await fetchInfo(requested);
    if (widget(node, "lora_name")?.value !== requested) return; // the user picked another file meanwhile
    showInfo(node, info);
    if (applyDefault) setStrength(node, info.default_strength);
  } catch (e) {
    console.warn(`LongCat LoRA: ${requested}: ${e.message}`);
    showInfo(node, null, e);
  }
}

app.registerExtension({
  name: "LongCat.LoraStrengthDefault",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      this.longcatConfigured = true; // loaded from a workflow: keep its saved strength
      const result = onConfigure?.apply(this, arguments);
      refresh(this, false);
      return result;
    };

    const getExtraMenuOptions = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const result = getExtraMenuOptions?.apply(this, arguments);
      const info = this.longcatInfo;
      options.push({
        content: info ? `Reset strength to the file's alpha/rank (${info.default_strength})` : "Reset strength to the file's alpha/rank",
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
});
