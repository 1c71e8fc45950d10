"""Real ComfyUI imported into the test process (CPU), with this pack loaded the way ComfyUI loads custom nodes,
so tests can look at every weight while ComfyUI's model management loads, offloads and switches models."""
import asyncio
import importlib.util
import sys

from conftest import PACK_ROOT

PACKAGE = "comfyui_longcat_video_inprocess"


def import_comfy_core(root, model_dirs, cpu=True):
    """ComfyUI's model management and folder paths (argv `--cpu` unless told otherwise), with `model_dirs`
    ({folder name: path}) registered: enough for the pack's loader and LoRA nodes, without ComfyUI's server."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import comfy.options
    comfy.options.enable_args_parsing()
    saved_argv = sys.argv
    sys.argv = [saved_argv[0]] + (["--cpu"] if cpu else [])
    try:
        import comfy.cli_args  # noqa: F401  (parses argv now)
    finally:
        sys.argv = saved_argv
    import folder_paths
    for folder, path in model_dirs.items():
        folder_paths.add_model_folder_path(folder, str(path))


def import_comfyui(root, model_dirs, cpu=True):
    """Import ComfyUI's modules (see import_comfy_core), create the PromptServer the pack's route needs, load the
    pack."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    import_comfy_core(root, model_dirs, cpu)
    try:
        import utils.install_util  # noqa: F401  (before `nodes`, which puts comfy/ first on sys.path)
    except ImportError:
        pass
    import server
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server.PromptServer(loop)
    import nodes  # noqa: F401
    spec = importlib.util.spec_from_file_location(PACKAGE, PACK_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
