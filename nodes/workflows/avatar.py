"""The LongCat-Video-Avatar workflows: a face image and speech make a talking video (v1.5: whisper-large-v3, the
DMD LoRA, 8 steps, guidance off), refined to 720p by the base DiT's refinement LoRA; two speakers, each with their
speech and a mask; a long video that continues until the speech ends. On the demo set the avatar DiT is a v1.0-style
random one that listens through a random wav2vec2-base (no DMD LoRA there: the DiT samples as it is)."""
from dataclasses import dataclass

from .catalog import AUDIO_PLAYER_HEIGHT, HF, IMAGE_PREVIEW_HEIGHT, OUTPUT, REAL, STAGE_1, STRENGTH, condition_rule, \
    file_list, note, prompt_nodes, refine_stage, save_nodes, sizes
from .graph import Group, ModelFile, Node, Workflow

AVATAR_REPO = f"{HF}/meituan-longcat/LongCat-Video-Avatar-1.5"
# Kijai's single-file v1.5 DiT (the official one is a folder of shards, which the Missing Models dialog cannot
# download); the DMD LoRA at the path the reference's demo scripts read; ComfyUI's own whisper (HuMo's).
AVATAR_DIT = ModelFile("LongCat-Avatar-15_bf16.safetensors", "diffusion_models",
                       f"{HF}/Kijai/WanVideo_comfy/resolve/main/LongCat/LongCat-Avatar-15_bf16.safetensors")
DMD_LORA = ModelFile("dmd_lora.safetensors", "loras", f"{AVATAR_REPO}/resolve/main/lora/dmd_lora.safetensors")
WHISPER = ModelFile("whisper_large_v3_fp16.safetensors", "audio_encoders",
                    f"{HF}/Comfy-Org/HuMo_ComfyUI/resolve/main/split_files/audio_encoders/"
                    "whisper_large_v3_fp16.safetensors")


@dataclass(frozen=True)
class AvatarSetup:
    """What the avatar workflows run on, beside the Setup's VAE, text encoder and base DiT."""
    dit: ModelFile
    audio_encoder: ModelFile
    dmd_lora: ModelFile  # None: the DiT samples without it (the demo set has none)
    speech: str  # LoadAudio's files, in ComfyUI's input folder
    speech_2: str
    fps: int  # the video's frame rate: the audio encoder's (v1.5 25, v1.0 16)
    encoder: str  # for titles and the note


REAL_AVATAR = AvatarSetup(AVATAR_DIT, WHISPER, DMD_LORA, "your_speech.wav", "second_speaker.wav", 25,
                          "whisper-large-v3")


def avatar_of(setup):
    return setup.avatar or REAL_AVATAR


def files(setup):
    av = avatar_of(setup)
    return {**setup.files(), **{f.name: f for f in (av.dit, av.audio_encoder, av.dmd_lora) if f is not None}}


def avatar_downloads(setup, refine=False):
    av = avatar_of(setup)
    refiner = [setup.dit, setup.refine_lora] if refine else []
    return file_list([av.dit, av.dmd_lora, av.audio_encoder, setup.text_encoder, setup.vae, *refiner])


def speech_nodes(av, suffix="", speech=None, title="Speech"):
    """LoadAudio of `speech` and its LongCat features (the encoder loads once: key `audio_encoder`)."""
    return [Node(f"speech{suffix}", "LoadAudio", {"audio": speech or av.speech}, title=title,
                 height=AUDIO_PLAYER_HEIGHT),
            Node(f"avatar_audio{suffix}", "LongCatAvatarAudio",
                 links={"audio_encoder": "audio_encoder", "audio": f"speech{suffix}"}, title=f"{title}: features")]


def mask_nodes(setup):
    """Speaker masks [2, H, W] from stock nodes, the reference's default boxes (its multi-speaker demo without
    bboxes): each speaker's half of the frame less a 10% margin, which leaves the background its own tokens."""
    w, h, half = setup.width, setup.height, setup.width // 2
    x0, x1, y0, y1 = int(half * 0.1), int(half * 0.9), int(h * 0.1), int(h * 0.9)
    return [
        Node("blank", "SolidMask", {"value": 0.0, "width": w, "height": h}, title="Empty mask"),
        Node("box", "SolidMask", {"value": 1.0, "width": x1 - x0, "height": y1 - y0}, title="Speaker box"),
        Node("left", "MaskComposite", {"x": x0, "y": y0, "operation": "add"},
             {"destination": "blank", "source": "box"}, title="Speaker 1: the left half"),
        Node("right", "MaskComposite", {"x": half + x0, "y": y0, "operation": "add"},
             {"destination": "blank", "source": "box"}, title="Speaker 2: the right half"),
        Node("left_image", "MaskToImage", links={"mask": "left"}, title="Mask 1 as image"),
        Node("right_image", "MaskToImage", links={"mask": "right"}, title="Mask 2 as image"),
        Node("both", "ImageBatch", links={"image1": "left_image", "image2": "right_image"}, title="Both masks"),
        Node("masks", "ImageToMask", {"channel": "red"}, {"image": "both"}, title="Speaker masks"),
    ]


def avatar_stage(setup, speakers=1):
    """Models, prompt, face image, speech and stage 1 (DMD schedule, guidance 1 / 1). Returns (nodes, groups)."""
    av, w, h = avatar_of(setup), setup.width, setup.height
    model = "avatar_dit"
    nodes = [
        Node("avatar_dit", "LongCatDiTLoader", {"dit_name": av.dit.name}, title="Load LongCat Avatar DiT"),
        Node("vae", "VAELoader", {"vae_name": setup.vae.name}, title="Load Wan 2.1 VAE"),
        *prompt_nodes(setup, negative=True),
        Node("audio_encoder", "AudioEncoderLoader", {"audio_encoder_name": av.audio_encoder.name},
             title=f"Load audio encoder ({av.encoder})"),
        *speech_nodes(av, title="Speech" if speakers == 1 else "Speaker 1"),
    ]
    if av.dmd_lora is not None:
        nodes.append(Node("dmd_lora", "LongCatLoraLoader", {"lora_name": av.dmd_lora.name, "strength": 0.5},
                          {"model": "avatar_dit"}, title="DMD LoRA (distilled steps, no CFG)"))
        model = "dmd_lora"
    condition = {"positive": "prompt", "negative": "negative", "avatar_audio": "avatar_audio",
                 "cond_latent": "encode_image"}
    if speakers == 2:
        nodes += [*speech_nodes(av, "_2", av.speech_2, "Speaker 2"), *mask_nodes(setup)]
        condition.update(avatar_audio_2="avatar_audio_2", speaker_masks="masks")
    nodes += [
        Node("load_image", "LoadImage", {"image": setup.start_image}, title="Face image",
             height=IMAGE_PREVIEW_HEIGHT),
        Node("scale", "ImageScale", {"upscale_method": "bilinear", "width": w, "height": h, "crop": "center"},
             {"image": "load_image"}, title="Scale to the video size"),
        Node("encode_image", "VAEEncode", links={"pixels": "scale", "vae": "vae"}, title="Encode the face image"),
        Node("condition", "LongCatAvatarCondition", {"width": w, "height": h, "length": setup.frames}, condition,
             title="Speech and face condition the clip"),
        Node("sigmas", "LongCatSigmas", {"stage": "avatar_distill"}, title="DMD schedule"),
        Node("noise", "RandomNoise", {"noise_seed": 42}, title="Noise (stage 1 seed)"),
        Node("sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler"),
        Node("guider", "LongCatAvatarGuider", {"text_cfg": 1.0, "audio_cfg": 1.0},
             {"model": model, "positive": ("condition", "positive"), "negative": ("condition", "negative")},
             title="Guider (text and audio guidance)"),
        Node("stage_1", "SamplerCustomAdvanced",
             links={"noise": "noise", "guider": "guider", "sampler": "sampler", "sigmas": "sigmas",
                    "latent_image": ("condition", "latent")}, title="Stage 1 sampling"),
    ]
    who = "two speakers" if speakers == 2 else "a face and speech"
    groups = [Group(setup.stage(f"Stage 1 · inputs: models, {who}"),
                    [["note", "avatar_dit", "clip", "vae"], ["dmd_lora", "prompt", "negative", "audio_encoder"],
                     ["speech", "speech_2", "load_image"]], STAGE_1)]
    if speakers == 2:
        groups.append(Group("Stage 1 · speaker masks: the left and the right half",
                            [["blank", "box"], ["left", "right"], ["left_image", "right_image"], ["both"],
                             ["masks"]], STAGE_1))
    groups.append(Group(setup.stage("Stage 1 · talking clip: DMD LoRA, guidance off"),
                        [["avatar_audio", "avatar_audio_2", "scale"], ["encode_image", "sigmas", "noise", "sampler"],
                         ["condition"], ["guider"], ["stage_1"]],
                        STAGE_1))
    return nodes, groups


def with_audio(save, audio):
    """The save nodes' CreateVideo carries `audio` (ComfyUI's CreateVideo takes an optional audio input)."""
    save[0].links["audio"] = audio
    save[0].title = "Video with the speech"
    return save


AVATAR_NOTE = ("**Face and speech:** pick the image in *Face image* (scaled to the video size, the centre "
               "cropped) and the speech in *Speech* (any length and rate; a clip longer than the video is cut).")
DMD = ("**Guidance:** with the DMD LoRA and the DMD schedule both guidance scales stay 1 (one model pass a step); "
       "without the LoRA use the base schedule and 4 / 4.")


def avatar_refine(setup=REAL):
    av = avatar_of(setup)
    stage_nodes, stage_groups = avatar_stage(setup)
    refine_nodes, refine_group = refine_stage(setup, "stage_1", "prompt", condition=("scale", 0))
    nodes = [
        note(setup, lambda: ["## Talking video from a face and speech: 480p, then 720p refine",
                             AVATAR_NOTE, "The refinement runs on the base LongCat DiT with its refinement LoRA "
                             "(the refinement LoRA belongs to it); it starts from the talking clip, so it needs no "
                             "audio. The refined video has twice the frames, at twice the frame rate.",
                             avatar_downloads(setup, refine=True), STRENGTH, DMD, sizes(setup, refine=True)]),
        *stage_nodes,
        Node("dit", "LongCatDiTLoader", {"dit_name": setup.dit.name}, title="Load LongCat DiT (refinement)"),
        *refine_nodes, *with_audio(save_nodes(setup, "trim", 2 * av.fps, task="avatar", stage="refined"), "speech"),
    ]
    refine_group.columns.insert(0, ["dit"])
    groups = [*stage_groups, refine_group, Group("Save · the refined video with the speech", [["video"], ["save"]],
                                               OUTPUT)]
    return Workflow("longcat_avatar_refine", setup.title("image + speech, 480p + 720p refine", "image + speech",
                                                         "Avatar"),
                    nodes, groups, files(setup), headline="Avatar: a face and speech, 480p then 720p refine")


def avatar_two_speakers(setup=REAL):
    av = avatar_of(setup)
    stage_nodes, stage_groups = avatar_stage(setup, speakers=2)
    nodes = [
        note(setup, lambda: ["## Two speakers: one image, two speeches, a mask each (480p)",
                             "Each speaker has a speech and a mask of the first frame (here the reference's default: "
                             "a box in the left and in the right half, a 10% margin around each; the rest is the "
                             "background. Draw your own in the mask editor of a Load Image, or move the boxes). "
                             "*audio_mix* para: both speak at once; add: speaker 1, then speaker 2.", AVATAR_NOTE,
                             avatar_downloads(setup), STRENGTH, DMD, sizes(setup, refine=False)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode frames"),
        Node("mix", "AudioMerge", {"merge_method": "add"}, {"audio1": "speech", "audio2": "speech_2"},
             title="Both speeches, for the video"),
        *with_audio(save_nodes(setup, "decode_1", av.fps, task="avatar_two_speakers", stage="distill"), "mix"),
    ]
    groups = [*stage_groups, Group("Save · the video with both speeches", [["decode_1", "mix"], ["video"], ["save"]],
                                 OUTPUT)]
    return Workflow("longcat_avatar_two_speakers", setup.title("two speakers, 480p", "two speakers", "Avatar"),
                    nodes, groups, files(setup), headline="Avatar: two speakers, a speech and a mask each")


def avatar_long(setup=REAL):
    av = avatar_of(setup)
    stage_nodes, stage_groups = avatar_stage(setup)
    new = setup.frames - setup.cond_frames
    nodes = [
        note(setup, lambda: ["## Long talking video: continued until the speech ends (480p)",
                             "A minute of speech or more: the first clip, then continuations of "
                             f"{new} new frames each ({new / av.fps:.1f} s) until the speech ends (*segments* 0; "
                             "a number stops earlier). Every continuation keeps the first frame as its identity "
                             "reference and hears the speech from where the video ends.", AVATAR_NOTE,
                             avatar_downloads(setup), STRENGTH, DMD, condition_rule(setup),
                             sizes(setup, refine=False)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode the first clip"),
        Node("long_video", "LongCatAvatarLongVideo",
             {"text_cfg": 1.0, "audio_cfg": 1.0, "noise_seed": 44, "segments": setup.segments if setup.demo else 0,
              "num_cond_frames": setup.cond_frames, "length": setup.frames},
             {"model": "dmd_lora" if av.dmd_lora else "avatar_dit", "positive": "prompt", "negative": "negative",
              "avatar_audio": "avatar_audio", "sampler": "sampler", "sigmas": "sigmas", "vae": "vae",
              "video": "decode_1"}, title="Continue until the speech ends"),
        *with_audio(save_nodes(setup, "long_video", av.fps, task="avatar_long", stage="distill"), "speech"),
    ]
    groups = [*stage_groups,
              Group(setup.stage("Long video · continuations with the speech: DMD LoRA, reference frame"),
                    [["decode_1"], ["long_video"]], STAGE_1),
              Group("Save · the long video with the speech", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_avatar_long", setup.title("long video from a minute of speech", "long video", "Avatar"),
                    nodes, groups, files(setup), headline="Avatar: a long talking video, until the speech ends")


AVATAR_WORKFLOWS = {"longcat_avatar_refine": avatar_refine, "longcat_avatar_two_speakers": avatar_two_speakers,
                    "longcat_avatar_long": avatar_long}
