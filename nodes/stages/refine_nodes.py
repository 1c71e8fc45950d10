"""480p -> 720p refinement geometry as nodes: upscale (2x frames, 720p bucket, padding) and the matching trim."""
import logging

from ..core.refine_geometry import refine_bucket, refine_frame_plan, trim_frames, upscale_frames

RESOLUTIONS = ["720p bucket", "same as input"]
log = logging.getLogger("longcat")


def refine_size(height, width, resolution):
    """(height, width) of the refinement: the reference's 720p bucket, or the input size rounded up to 64 px (the
    block-sparse tiles: VAE 8 x patch 2 x tile 4)."""
    if resolution == "720p bucket":
        return refine_bucket(height, width)
    if resolution != "same as input":
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    size = (height + 63) // 64 * 64, (width + 63) // 64 * 64
    if size != (height, width):
        log.warning("LongCat refinement 'same as input': %dx%d is refined at %dx%d (multiples of 64 for the "
                    "block-sparse tiles)", width, height, size[1], size[0])
    return size


class LongCatRefineUpscale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The decoded frames of the 480p stage."}),
            "resolution": (RESOLUTIONS, {"default": "720p bucket", "tooltip":
                           "720p bucket: the reference's refinement size for this aspect ratio (480x832 -> "
                           "704x1280). same as input: keep the size (refine in time only, or on small previews)."}),
            "spatial_only": ("BOOLEAN", {"default": False, "tooltip":
                             "Keep the frame count (no 15 -> 30 fps doubling)."}),
        }, "optional": {
            "condition_frames": ("INT", {"default": 0, "min": 0, "max": 10000, "tooltip":
                                 "How many of the upscaled frames at the start are a condition (LongCat Refine "
                                 "Condition): 0 = none (text-to-video), 1 = the start image (image-to-video), 26 = "
                                 "the previous refined segment's 2 x 13 frames (long video)."}),
        }}

    RETURN_TYPES = ("IMAGE", "INT", "FLOAT", "INT")
    RETURN_NAMES = ("images", "keep_frames", "fps_factor", "skip_frames")
    OUTPUT_TOOLTIPS = ("Frames to VAE-encode for the refinement: resized, doubled by trilinear interpolation, "
                       "padded (the first frame before a condition, the last at the end) so the latent frame counts "
                       "are multiples of 4.",
                       "How many frames to keep after decoding the refined latent (LongCat Trim Frames).",
                       "Output fps / input fps (2 unless spatial_only).",
                       "How many padding frames to drop at the start after decoding (LongCat Trim Frames).")
    FUNCTION = "upscale"
    CATEGORY = "LongCat"
    DESCRIPTION = "Prepares stage-1 frames for the LongCat refinement stage (720p, 2x frames, padding)."

    def upscale(self, images, resolution, spatial_only, condition_frames=0):
        if images.dim() != 4 or images.shape[0] < 1:
            raise ValueError(f"expected IMAGE frames [F, H, W, C], got {list(images.shape)}")
        height, width = refine_size(images.shape[1], images.shape[2], resolution)
        plan = refine_frame_plan(images.shape[0], spatial_only, condition_frames)
        frames = upscale_frames(images, height, width, double_frames=not spatial_only,
                                condition_frames=condition_frames)
        return frames.to(images.dtype), plan.output_frames, float(plan.fps_factor), plan.pad_front


class LongCatTrimFrames:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The decoded frames of the refinement stage."}),
            "keep_frames": ("INT", {"default": 186, "min": 1, "max": 100000, "tooltip":
                            "Frames to keep (connect LongCat Refine Upscale's keep_frames): drops the padding."}),
        }, "optional": {
            "skip_frames": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                            "Frames to drop at the start first (connect LongCat Refine Upscale's skip_frames; for a "
                            "continuation, the num_cond_frames the new clip repeats)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The refined frames without the padding.",)
    FUNCTION = "trim"
    CATEGORY = "LongCat"
    DESCRIPTION = "Cuts the padding frames that LongCat Refine Upscale added (or a continuation's repeated frames)."

    def trim(self, images, keep_frames, skip_frames=0):
        return (trim_frames(images, keep_frames, skip_frames),)
