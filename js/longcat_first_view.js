// The shipped workflows' first view.
// 1. `python -m nodes.cli run --ui` sets the user setting LongCat.FirstView to its main demo workflow (a file of the
//    user's Workflows folder): the first page load after it opens that workflow instead of ComfyUI's stock default
//    graph (which names models the demo set does not have), and clears the setting, so later loads restore the
//    user's own session as usual.
// 2. Each shipped workflow saves a view that shows stage 1 whole and readable on a 1600x1000 window (extra.ds) and
//    marks it as that view (extra.longcat_first_view). ComfyUI 0.33's frontend ignores the saved view of a
//    workflow opened from the template browser and fits the whole graph instead: for a two-stage video workflow
//    that is a zoom at which no text is drawn. This puts the saved view back, as long as the workflow still
//    carries it (once a user saves the workflow with a view of their own, the frontend's choice stands).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const FIRST_VIEW = "LongCat.FirstView";

function sameView(a, b) {
  return !!a && !!b && a.scale === b.scale && a.offset[0] === b.offset[0] && a.offset[1] === b.offset[1];
}

let pendingFirstView = null; // the first-view workflow, until the frontend's own first graph has loaded
let graphConfigured = false;

async function openFirstView(path) {
  const response = await api.getUserData(path);
  if (response.status !== 200) {
    console.warn(`LongCat: the first-view workflow ${path} is not in the user folder (${response.status})`);
    return;
  }
  const workflow = await response.json();
  await app.loadGraphData(workflow, true, true, path.split("/").pop());
  console.log(`LongCat: opened ${path}`);
}

function restoreSavedView() {
  const extra = (app.rootGraph ?? app.graph)?.extra;
  const first = extra?.longcat_first_view;
  if (!first || !sameView(first, extra.ds)) return;
  const ds = app.canvas.ds;
  if (sameView(first, ds)) return;
  ds.scale = first.scale;
  ds.offset[0] = first.offset[0];
  ds.offset[1] = first.offset[1];
  app.canvas.setDirty(true, true);
}

app.registerExtension({
  name: "LongCat.FirstView",

  async setup() {
    try {
      const path = await api.getSetting(FIRST_VIEW);
      if (!path) return;
      await api.storeSetting(FIRST_VIEW, "");
      // The frontend loads its first graph (the restored session, or its default graph) after the extensions'
      // setup: open ours once that is done, so it is what stays on the canvas.
      if (graphConfigured) await openFirstView(path);
      else pendingFirstView = path;
    } catch (error) {
      console.warn("LongCat: could not open the first-view workflow", error);
    }
  },

  async afterConfigureGraph() {
    graphConfigured = true;
    if (pendingFirstView) {
      const path = pendingFirstView;
      pendingFirstView = null;
      setTimeout(() => openFirstView(path).catch((error) => console.warn("LongCat: first view", error)), 0);
      return;
    }
    restoreSavedView();
  },
});
