"""The story workflow, as the reference's interactive long video (`run_demo_interactive_video.py`) makes one:
the first clip follows prompt 0, continuation i follows prompt i (LongCat Segment Prompts into LongCat Long
Video), then the whole video is refined to 720p with an empty prompt, as the reference refines it."""
from .catalog import OUTPUT, REAL, STAGE_1, STRENGTH, condition_rule, continuation_nodes, downloads, note, \
    refine_long_nodes, save_nodes, sizes, stage_one
from .graph import Group, Node, Workflow

STORY = ("The golden retriever slows down in the meadow, sniffs the grass and picks up a red ball in its mouth, "
         "cinematic.",
         "The golden retriever trots back toward the camera with the red ball in its mouth, tail wagging, cinematic.",
         "The golden retriever drops the red ball in front of the camera and sits down, panting happily, cinematic.")


def text_node(setup, key, text, title):
    """A prompt: CLIPTextEncode of `text`, or on the demo set its random text embeddings."""
    if setup.text_encoder is None:
        return Node(key, "LongCatTextEmbeddingsLoader", {"embeddings_name": setup.embeddings.name},
                    title=f"{title} (demo: random)")
    return Node(key, "CLIPTextEncode", {"text": text}, {"clip": "clip"}, title=title, height=110)


def story(setup=REAL):
    """The reference's interactive long video: the first clip follows prompt 0, continuation i prompt i; the
    refinement runs with an empty prompt, as the reference's does."""
    stage_nodes, stage_group = stage_one(setup, base=True)
    next(n for n in stage_nodes if n.key == "prompt").title = setup.stage("Prompt 0: the first clip")
    refine_nodes, refine_group = refine_long_nodes(setup, "refine_prompt")
    segments, new = setup.segments, setup.frames - setup.cond_frames
    prompts = [text_node(setup, f"prompt_{i}", STORY[min(i, len(STORY)) - 1], f"Prompt {i}: continuation {i}")
               for i in range(1, segments + 1)]
    long_video_node = continuation_nodes(setup, "guider", "sampler", "decode_1", segments)
    long_video_node[1].links["prompts"] = "story"
    long_video_node[1].title = "Continue the story, a prompt per continuation"
    nodes = [
        note(setup, lambda: ["## A story: a prompt per segment, refined to 720p",
                             "*Prompt 0* makes the first clip; continuation i follows *Prompt i* (more "
                             "continuations than prompts repeat the last one; add a prompt in the next free slot "
                             f"of *Story* and raise *segments*). Each continuation adds {new} frames "
                             f"({new / 15:.1f} s). The refinement runs with an empty prompt, as the reference's.",
                             downloads(setup, loras=("refine",)), STRENGTH, condition_rule(setup),
                             sizes(setup, refine=True)]),
        *stage_nodes, *prompts,
        Node("story", "LongCatSegmentPrompts", links={"prompt_0": "prompt", **{p.key: p.key for p in prompts}},
             title="Story: a prompt per segment"),
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode the first segment"),
        *long_video_node,
        text_node(setup, "refine_prompt", "", "Empty prompt (refinement)"),
        *refine_nodes,
        *save_nodes(setup, "refine_long", 30, task="story", stage="refined"),
    ]
    groups = [stage_group,
              Group(setup.stage("Long video · continuations, a prompt each, enhance_hf, CFG-Zero*"),
                    [[p.key for p in prompts], ["story", "decode_1", "continue_sigmas"], ["long_video"]], STAGE_1),
              refine_group,
              Group("Save · the refined story", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_story", setup.title("a prompt per segment, 720p", "(a prompt per segment)", "story"),
                    nodes, groups, setup.files(), headline="A story: a prompt per segment, refined to 720p")
