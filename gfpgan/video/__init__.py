"""Video restoration with faces tracked and their landmarks smoothed over time.

`io` (PyAV read / write, audio copied), `scene` (cut detection), `tracking` (face tracks),
`smoothing` (zero-lag landmark smoother), `faces_json` (the per-frame landmark file), `background`
(pipeline threads) and `restorer` (`VideoRestorer`, behind `GFPGANer.enhance_video`).
"""
from gfpgan.video.restorer import VideoOptions, VideoRestorer, VideoResult

__all__ = ['VideoOptions', 'VideoRestorer', 'VideoResult']
