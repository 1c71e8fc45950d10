"""The shipped workflows as data: one description per workflow (nodes, links, groups, note), from which the UI
format (the canvas, the template browser), the API format (POST /prompt), the demo variant and the template
thumbnail are all made. No ComfyUI import: scripts/build_workflows.py and the command line use it without one."""
