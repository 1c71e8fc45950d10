"""480p -> 720p refinement geometry as nodes: upscale (2x frames, 720p bucket, padding) and the matching trim."""
from ..core.refine_geometry import refine_bucket, refine_frame_plan, trim_frames, upscale_frames

RESOLUTIONS = ["720p bucket", "same as input"]


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
        }}

    RETURN_TYPES = ("IMAGE", "INT", "FLOAT")
    RETURN_NAMES = ("images", "keep_frames", "fps_factor")
    OUTPUT_TOOLTIPS = ("Frames to VAE-encode for the refinement: resized, doubled by trilinear interpolation, "
                       "padded with the last frame so the latent frame count is a multiple of 4.",
                       "How many frames to keep after decoding the refined latent (LongCat Trim Frames).",
                       "Output fps / input fps (2 unless spatial_only).")
    FUNCTION = "upscale"
    CATEGORY = "LongCat"
    DESCRIPTION = "Prepares stage-1 frames for the LongCat refinement stage (720p, 2x frames, padding)."

    def upscale(self, images, resolution, spatial_only):
        if images.dim() != 4 or images.shape[0] < 1:
            raise ValueError(f"expected IMAGE frames [F, H, W, C], got {list(images.shape)}")
        height, width = images.shape[1:3]
        if resolution == "720p bucket":
            height, width = refine_bucket(height, width)
        elif height % 64 or width % 64:
            height, width = (height + 63) // 64 * 64, (width + 63) // 64 * 64  # block-sparse tiles need 64 px
        plan = refine_frame_plan(images.shape[0], spatial_only)
        frames = upscale_frames(images, height, width, double_frames=not spatial_only)
        return (frames.to(images.dtype), min(plan.interp_frames, plan.output_frames), float(plan.fps_factor))


class LongCatTrimFrames:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The decoded frames of the refinement stage."}),
            "keep_frames": ("INT", {"default": 186, "min": 1, "max": 100000, "tooltip":
                            "Frames to keep (connect LongCat Refine Upscale's keep_frames): drops the padding."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The refined frames without the padding.",)
    FUNCTION = "trim"
    CATEGORY = "LongCat"
    DESCRIPTION = "Cuts the padding frames that LongCat Refine Upscale added."

    def trim(self, images, keep_frames):
        return (trim_frames(images, keep_frames) if images.shape[0] > keep_frames else images,)
