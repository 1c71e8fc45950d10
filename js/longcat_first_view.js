// The shipped workflows' first view. Each saves a view that shows stage 1 whole and readable on a 1600x1000
// window (extra.ds) and marks it as that view (extra.longcat_first_view). ComfyUI 0.33's frontend ignores the
// saved view of a workflow opened from the template browser and fits the whole graph instead: for a two-stage
// video workflow that is a zoom at which no text is drawn. This puts the saved view back, as long as the workflow
// still carries it (once a user saves the workflow with a view of their own, the frontend's choice stands).
import { app } from "../../scripts/app.js";

function sameView(a, b) {
  return !!a && !!b && a.scale === b.scale && a.offset[0] === b.offset[0] && a.offset[1] === b.offset[1];
}

app.registerExtension({
  name: "LongCat.FirstView",

  async afterConfigureGraph() {
    const extra = (app.rootGraph ?? app.graph)?.extra;
    const first = extra?.longcat_first_view;
    if (!first || !sameView(first, extra.ds)) return;
    const ds = app.canvas.ds;
    if (sameView(first, ds)) return;
    ds.scale = first.scale;
    ds.offset[0] = first.offset[0];
    ds.offset[1] = first.offset[1];
    app.canvas.setDirty(true, true);
  },
});
