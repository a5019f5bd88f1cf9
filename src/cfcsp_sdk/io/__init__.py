"""Reading media: still images and streaming video decoding."""

from cfcsp_sdk.io.images import MAX_IMAGE_PIXELS, load_image, to_bgr_uint8
from cfcsp_sdk.io.video import Frame, VideoInfo, VideoReader

__all__ = ["MAX_IMAGE_PIXELS", "Frame", "VideoInfo", "VideoReader", "load_image", "to_bgr_uint8"]
