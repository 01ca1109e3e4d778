"""Camera simulator: a scenario player that delivers frames the way a camera would.

``ScenarioPlayer`` plays a registered scenario (a spec string such as ``walk_up`` or
``walk_up:person=Aaron_Peirsol,photo=2``, see ``kiosk_sim.scenarios``), a scene object (a
``Scenario`` or a ``ScriptedPerson``), a video file or a folder of images as 640x480 BGR frames,
looping by default; ``play(source)`` changes what the camera sees while it runs. It can be made
to misbehave like real hardware: ``unplug()`` (reads and opens fail), ``stall()`` (no frames arrive), ``freeze()``
(the same frame again and again). Faults stay until cleared, as a broken cable would.

The kiosk's camera driver reads it through its ``player`` backend; ``kiosk-sim camera`` writes
a scenario to a video file or an image folder for demos and outside tools.
"""

import logging
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

from kiosk_sim import scenarios
from kiosk_sim.scenarios import FRAME_SIZE, SceneFrame

from kiosk import argtypes

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def fit_frame(image, size):
    """Scale ``image`` to fit ``size`` (w, h) keeping its aspect, padding with grey; grey becomes BGR."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.full((height, width, 3), 96, np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    out[y0:y0 + new_h, x0:x0 + new_w] = resized
    return out


class _ScenarioFrames:
    def __init__(self, scenario):
        self.scenario = scenario
        self.frame_count = scenario.frame_count
        self.fps = scenario.fps

    def get(self, index):
        return self.scenario.render(index)

    def close(self):
        pass


class _FolderFrames:
    def __init__(self, folder, size, fps):
        self.paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.size, self.fps, self.frame_count = size, fps, len(self.paths)

    def get(self, index):
        path = self.paths[index % self.frame_count]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read image {path}")
        return SceneFrame(fit_frame(image, self.size), index)

    def close(self):
        pass


class _VideoFrames:
    def __init__(self, path, size, fps):
        self.path, self.size = str(path), size
        self._capture = None
        self._next = 0
        self._open()
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or fps
        self.frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0

    def _open(self):
        if self._capture is not None:
            self._capture.release()
        self._capture = cv2.VideoCapture(self.path)
        if not self._capture.isOpened():
            raise OSError(f"cannot open video {self.path}")
        self._next = 0

    def get(self, index):
        if self.frame_count and index % self.frame_count != self._next:
            if index % self.frame_count == 0:
                self._open()
            else:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, index % self.frame_count)
                self._next = index % self.frame_count
        ok, image = self._capture.read()
        if not ok:  # the container's frame count was optimistic: start over
            self.frame_count = self._next or 1
            self._open()
            ok, image = self._capture.read()
            if not ok:
                raise OSError(f"no frames in video {self.path}")
        self._next += 1
        return SceneFrame(fit_frame(image, self.size), index)

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def is_scene(source):
    """Whether ``source`` is a scene object (``render(index)``, ``frame_count``, ``fps``) rather than a name."""
    return all(hasattr(source, attr) for attr in ("render", "frame_count", "fps"))


class ScenarioPlayer:
    """Plays a scenario, a scene object, a video file or an image folder as camera frames, with faults.

    ``source`` is a scenario spec (``name`` or ``name:key=value,...``, see ``scenarios``), a
    scene object such as a ``Scenario`` or a ``ScriptedPerson`` (frame_count 0: endless), a video
    file path or an image folder path. A spec with parameters is checked and built here, so a bad
    one fails at once with ``ScenarioSpecError`` (a ValueError). ``read()`` returns the next BGR
    frame, or None when a non-looping source ended or the player is stalled; it raises
    ``OSError`` while unplugged or closed.
    """

    def __init__(self, source="walk_up", *, seed=0, size=FRAME_SIZE, loop=True, fps=None, faces=None):
        self.seed = seed
        self.size = tuple(size)
        self.loop = loop
        self._faces = faces
        self._fps_override = fps
        self._frames = None
        self._index = 0
        self.source, self._scene = self._resolve(source)
        self._last = None
        self._lock = threading.Lock()
        self._unplugged = False
        self._stalled = False
        self._frozen = False
        self.opens = 0
        self.last_scene = None

    # --- the device side ---------------------------------------------------------------------

    def open(self):
        """Connect to the (simulated) camera; raises OSError while it is unplugged."""
        with self._lock:
            if self._unplugged:
                raise OSError("simulated camera is unplugged")
            if self._frames is None:
                self._frames = self._make_frames(self.source, self._scene)
            self.opens += 1

    def _resolve(self, source):
        """(display name, scene object or None) for a source; specs with parameters are built now."""
        if is_scene(source):
            return str(getattr(source, "name", type(source).__name__)), source
        source = str(source)
        if ":" in source and not Path(source).exists():
            # a spec with parameters: an unknown scenario, parameter, person or photo fails here
            return source, scenarios.build(source, seed=self.seed, size=self.size, faces=self._faces)
        return source, None

    def play(self, source):
        """Show ``source`` (anything the constructor takes) from the next frame on, from its frame 0."""
        name, scene = self._resolve(source)
        with self._lock:
            if self._frames is not None:
                frames = self._make_frames(name, scene)  # may raise: then nothing changed
                self._frames.close()
                self._frames = frames
            self.source, self._scene = name, scene
            self._index = 0
            self._last = None

    def _make_frames(self, source, scene):
        if scene is not None:
            return _ScenarioFrames(scene)
        if source in scenarios.SCENARIOS:
            return _ScenarioFrames(scenarios.build(source, seed=self.seed, size=self.size, faces=self._faces))
        path = Path(source)
        if path.is_dir():
            return _FolderFrames(path, self.size, self._fps_override or scenarios.DEFAULT_FPS)
        if path.is_file():
            return _VideoFrames(path, self.size, self._fps_override or scenarios.DEFAULT_FPS)
        raise OSError(f"{source!r} is neither a camera scenario ({', '.join(sorted(scenarios.SCENARIOS))}) "
                      "nor a video file or image folder")

    @property
    def is_open(self):
        return self._frames is not None

    @property
    def scene(self):
        """The scene object playing now (a Scenario or ScriptedPerson), or None for a name, file or folder."""
        return self._scene

    @property
    def fps(self):
        """Frames per second the source is meant to play at."""
        if self._fps_override:
            return float(self._fps_override)
        return float(self._frames.fps) if self._frames else scenarios.DEFAULT_FPS

    @property
    def frame_count(self):
        """Frames in one pass of the source (0 if unknown)."""
        return self._frames.frame_count if self._frames else 0

    @property
    def index(self):
        """Index of the next frame to be played."""
        return self._index

    def skip(self, count):
        """Let ``count`` frames go by without rendering them (the camera looks at fewer frames)."""
        if int(count) != count or count < 0:
            raise ValueError(f"count must be a whole number >= 0, not {count!r}")
        with self._lock:
            if not self._frozen and not self._stalled:
                self._index += int(count)

    def read(self):
        """The next frame as a uint8 BGR array (a fresh copy), or None if none is available now."""
        scene = self.read_scene()
        return None if scene is None else scene.image

    def read_scene(self):
        """Like ``read()`` but returns the ``SceneFrame`` with its ground truth."""
        with self._lock:
            if self._unplugged:
                raise OSError("simulated camera is unplugged")
            if self._frames is None:
                raise OSError("simulated camera is not open")
            if self._stalled:
                return None
            if self._frozen and self._last is not None:
                return SceneFrame(self._last.image.copy(), self._last.index, list(self._last.faces))
            count = self._frames.frame_count
            if not self.loop and count and self._index >= count:
                return None
            scene = self._frames.get(self._index)
            self._index += 1
            self._last = scene
            self.last_scene = scene
            return SceneFrame(scene.image.copy(), scene.index, list(scene.faces))

    def close(self):
        """Disconnect; the position is kept so a reopened player continues where it was."""
        with self._lock:
            if self._frames is not None:
                self._frames.close()
                self._frames = None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- fault injection ---------------------------------------------------------------------

    def unplug(self):
        """Pull the cable: reads and opens fail until ``replug()``."""
        with self._lock:
            self._unplugged = True

    def replug(self):
        """Put the cable back (the driver still has to reopen)."""
        with self._lock:
            self._unplugged = False

    def stall(self):
        """No more frames arrive (the device stays open) until ``clear_faults()``."""
        with self._lock:
            self._stalled = True

    def freeze(self):
        """The same frame is delivered again and again until ``clear_faults()``."""
        with self._lock:
            self._frozen = True

    def clear_faults(self):
        """Undo every fault."""
        with self._lock:
            self._unplugged = self._stalled = self._frozen = False


def write_frames(player, out, *, frames=None):
    """Play ``player`` into a video file (.mp4/.avi/.mkv) or an image folder; return frames written."""
    out = Path(out)
    with player:
        count = frames or player.frame_count or int(player.fps * 5)
        writer = None
        if out.suffix.lower() in VIDEO_CODECS:
            out.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[out.suffix.lower()])
            writer = cv2.VideoWriter(str(out), fourcc, player.fps, player.size)
            if not writer.isOpened():
                raise OSError(f"OpenCV cannot write {out} (codec {VIDEO_CODECS[out.suffix.lower()]})")
        elif out.suffix:
            raise ValueError(f"{out}: use .mp4, .avi or .mkv for a video, or a folder name without a suffix")
        else:
            out.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            for index in range(count):
                image = player.read()
                if image is None:
                    break
                if writer is not None:
                    writer.write(image)
                else:
                    cv2.imwrite(str(out / f"frame_{index:05d}.png"), image)
                written += 1
        finally:
            if writer is not None:
                writer.release()
    return written


def register(sub):
    parser = sub.add_parser(
        "camera", help="play a camera scenario to a video file or an image folder",
        description="Render a camera scenario (or replay a video file / image folder) as 640x480 BGR "
                    "frames into a video file (.mp4, .avi, .mkv) or a folder of PNG images.")
    parser.add_argument("--scenario", default="walk_up", metavar="SPEC",
                        help="scenario name with optional parameters, e.g. walk_up:person=Aaron_Peirsol,photo=2 "
                             "(see --list), or a video file or image folder to replay (default: walk_up)")
    parser.add_argument("--out", metavar="PATH",
                        help="output: a .mp4/.avi/.mkv file, or a folder (created) for PNG frames")
    parser.add_argument("--frames", type=argtypes.positive_int, metavar="N",
                        help="frames to write (default: one pass of the scenario)")
    parser.add_argument("--seed", type=int, default=0, help="seed choosing people and noise (default 0)")
    parser.add_argument("--fps", type=argtypes.positive_float, help="frame rate of the output video (default: the source's)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.set_defaults(func=run)


def run(args):
    if args.list:
        for name in sorted(scenarios.SCENARIOS):
            doc = (scenarios.SCENARIOS[name].__doc__ or "").strip().splitlines()
            params = scenarios.PARAMS.get(name)
            print(f"{name:16} {doc[0] if doc else ''}" + (f" [{', '.join(params)}]" if params else ""))
        return 0
    if not args.out:
        print("kiosk-sim camera: --out PATH is required (or --list)", file=sys.stderr)
        return 2
    if args.frames is not None and args.frames < 1:
        print("kiosk-sim camera: --frames must be at least 1", file=sys.stderr)
        return 2
    try:
        player = ScenarioPlayer(args.scenario, seed=args.seed, loop=True, fps=args.fps)
        written = write_frames(player, args.out, frames=args.frames)
    except (OSError, ValueError, KeyError) as e:
        print(f"kiosk-sim camera: {e}", file=sys.stderr)
        return 1
    print(f"wrote {written} frames of {args.scenario} ({player.size[0]}x{player.size[1]} at "
          f"{player.fps:g} fps) to {args.out}")
    return 0
