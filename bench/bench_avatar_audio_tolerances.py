"""Where the audio golden's tolerances come from: the distance of LongCat Avatar Audio's features to the
reference's (tests/golden/avatar/avatar_audio_cases.*) on ComfyUI's stock encoders with the golden's random
weights (the floor: fp16 weights on CPU, torchaudio's mel), and the distance of the mistakes the tolerances must
catch, as ratios to the tolerance (2x floor). One run; whisper-large-v3 runs twice on 3.2 s (minutes on a CPU).

Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_avatar_audio_tolerances.py
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from bench_common import load_pack  # noqa: E402

load_pack()
from comfy_inprocess import import_comfy_core  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402
from longcat_pack.nodes.core.avatar import audio_features as af  # noqa: E402
from longcat_pack.nodes.core.avatar.audio_demo import random_encoder_weights  # noqa: E402

CASES = HERE.parent / "tests" / "golden" / "avatar" / "avatar_audio_cases"


def distance(actual, expected):
    return (actual - expected).abs().max().item(), ((actual - expected).norm() / expected.norm()).item()


def report(title, rows):
    floor = rows[0][1]
    print(f"\n{title} (tolerance = 2x floor: {2 * floor[0]:.3g} max abs, {2 * floor[1]:.3g} rel L2)")
    print(f"{'':44s} {'max abs':>9s} {'rel L2':>9s} {'x tol (abs)':>11s} {'x tol (rel)':>11s}")
    for name, (max_abs, rel) in rows:
        print(f"{name:44s} {max_abs:9.3g} {rel:9.3g} {max_abs / (2 * floor[0]):11.2f} {rel / (2 * floor[1]):11.2f}")


def main():
    import_comfy_core(find_comfyui(), {})
    import comfy.sd  # noqa: F401  (the audio encoder module uses comfy.model_patcher without importing it)
    import comfy.audio_encoders.audio_encoders as audio_encoders
    from longcat_pack.nodes.model.avatar.audio_encoder import wav2vec2_parts, whisper_chunk_encoder
    spec, golden = json.loads(CASES.with_suffix(".json").read_text()), load_file(str(CASES.with_suffix(".safetensors")))
    wave = af.prepared_waveform(golden["audio.waveform"][None, None], af.SAMPLE_RATE)
    ln = af.loudness_normalized(wave)

    def encoder(name):
        recipe = spec[name]["encoder_weights"]
        weights = random_encoder_weights(recipe["keys"], recipe["seed"], torch.float16)
        return audio_encoders.load_audio_encoder_from_sd(weights)

    torch.set_grad_enabled(False)
    w2v = encoder("wav2vec2")
    conv, transformer = wav2vec2_parts(w2v)
    ref = golden["wav2vec2.embedding"]
    noise = golden["wav2vec2.noise_floor"].numpy()
    frames = af.WAV2VEC2.frames(len(wave))
    iv = af.wav2vec2_input(wave, noise_floor=noise)
    fresh = af.wav2vec2_input(wave)
    rows = [("recipe, the golden's noise floor (floor)", distance(af.wav2vec2_embedding(iv, conv, transformer), ref)),
            ("recipe, a fresh noise floor", distance(af.wav2vec2_embedding(fresh, conv, transformer), ref))]
    raw = torch.from_numpy((ln + noise).astype("float32"))
    raw = (raw - raw.mean()) / torch.sqrt(raw.var(unbiased=False) + 1e-7)
    rows.append(("no low-pass", distance(af.wav2vec2_embedding(raw, conv, transformer), ref)))
    shifted = af.wav2vec2_embedding(iv, conv, lambda f: (None,) + tuple(transformer(f)[:-1]))
    rows.append(("hidden_states[:-1]", distance(shifted, ref)))
    native = transformer(conv(iv[None]))
    after = af.resample_frames(torch.stack([h[0].float() for h in native[1:]], dim=1), frames)
    rows.append(("interpolated after the transformer", distance(after, ref)))
    unnormalized = torch.from_numpy(af.lfilter(*af.butter(*af.LOW_PASS), ln + noise).astype("float32"))
    rows.append(("no zero-mean / unit-variance input",
                 distance(af.wav2vec2_embedding(unnormalized, conv, transformer), ref)))
    report("wav2vec2 [102, 12, 768], max |ref| %.3g" % ref.abs().max().item(), rows)
    del w2v

    whisper = encoder("whisper")
    stock, seen = whisper_chunk_encoder(whisper), []
    ref = golden["whisper.embedding"]
    out = af.whisper_embedding(wave, lambda chunk: seen.append(stock(chunk)) or seen[-1])
    rows = [("recipe (floor)", distance(out, ref))]
    hidden = seen[0]
    frames = af.WHISPER.frames(len(wave))
    last = torch.stack([hidden[32][0].float()] * 5, dim=1)[:2 * frames]
    rows.append(("last layer only", distance(af.resample_frames(last, frames), ref)))
    grouped = af.whisper_groups(hidden)[:2 * frames]
    rows.append(("decimated instead of interpolated", distance(grouped[::2][:frames], ref)))
    rows.append(("no loudness normalization", distance(_without_loudness(wave, stock), ref)))
    mel = whisper.model.feature_extractor(torch.from_numpy(ln).float()[None, None])
    report("whisper [80, 5, 1280], max |ref| %.3g" % ref.abs().max().item(), rows)
    mel_diff = (mel - golden["whisper.mel"]).abs().max().item()
    print(f"\nwhisper mel (torchaudio vs the reference's numpy): max abs {mel_diff:.3g}, "
          f"max |mel| {golden['whisper.mel'].abs().max().item():.3g}")


def _without_loudness(wave, stock):
    saved = af.loudness_normalized
    af.loudness_normalized = lambda w, *args, **kwargs: w
    try:
        return af.whisper_embedding(wave, stock)
    finally:
        af.loudness_normalized = saved


if __name__ == "__main__":
    main()
