"""A prompt per segment of a long video, as the reference's interactive demo (`run_demo_interactive_video.py`)
makes a story: the first clip follows prompt 0, continuation i follows prompt i. LongCat Segment Prompts collects
the prompts' CONDITIONINGs in order (any text encoder node, or precomputed embeddings, feeds each slot); LongCat
Long Video samples continuation i with prompt i in place of its guider's positive prompt, and when there are more
continuations than prompts the last prompt carries on."""
import copy
import logging

PROMPTS = "LONGCAT_PROMPTS"  # a list of CONDITIONING: [prompt 0 (the first clip), prompt 1, ...]
SLOTS = 8
log = logging.getLogger("longcat")


class LongCatSegmentPrompts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "prompt_0": ("CONDITIONING", {"tooltip": "The first clip's prompt (the text-to-video clip the long video "
                                                     "starts from): wire the same conditioning into its guider."}),
        }, "optional": {
            f"prompt_{i}": ("CONDITIONING", {"tooltip": f"Continuation {i}'s prompt. Connect the slots in order; "
                                                        "continuations past the last connected one repeat it."})
            for i in range(1, SLOTS)
        }}

    RETURN_TYPES = (PROMPTS,)
    RETURN_NAMES = ("prompts",)
    OUTPUT_TOOLTIPS = ("The story's prompts in order, for LongCat Long Video's `prompts` input.",)
    FUNCTION = "collect"
    CATEGORY = "LongCat"
    DESCRIPTION = ("A prompt per segment of a long video: prompt_0 for the first clip, prompt_i for continuation i "
                   "(the reference's interactive long video); the last one repeats for further continuations.")

    def collect(self, prompt_0, **more):
        connected = sorted(int(name.split("_")[1]) for name, value in more.items() if value is not None)
        missing = sorted(set(range(1, connected[-1] + 1)) - set(connected)) if connected else []
        if missing:
            raise ValueError(f"LongCat Segment Prompts: prompt_{missing[0]} is not connected but "
                             f"prompt_{connected[-1]} is: connect the prompts in order, without gaps")
        return ([prompt_0] + [more[f"prompt_{i}"] for i in connected],)


def segment_prompt(prompts, segment):
    """The prompt of segment `segment` (0: the first clip): prompts[segment], or the last one past the end."""
    return prompts[min(segment, len(prompts) - 1)]


def with_positive(guider, conditioning):
    """A copy of a stock guider (CFGGuider, BasicGuider) whose positive prompt is `conditioning`; its negative
    prompt, cfg and model options stay. The given guider is left as it is."""
    if "positive" not in getattr(guider, "original_conds", {}):
        raise ValueError(f"a prompt per segment needs a guider with a positive prompt (CFGGuider, BasicGuider); "
                         f"{type(guider).__name__} has none")
    copied = copy.copy(guider)
    copied.original_conds = dict(guider.original_conds)
    copied.inner_set_conds({"positive": conditioning})
    return copied


def log_prompt_plan(prompts, segments):
    """Says which prompt each continuation uses where the last one repeats."""
    if segments >= len(prompts):
        log.info("LongCat Long Video: %d prompts for %d continuations: continuations %d to %d repeat prompt %d",
                 len(prompts), segments, len(prompts), segments, len(prompts) - 1)
