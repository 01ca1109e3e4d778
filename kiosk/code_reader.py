"""Reading provisioning codes from camera frames (OpenCV's QR detector; no extra dependency).

The camera is outside input: a frame is bounded in size before it is searched, the decoded
text is bounded before it is checked (provision_code.decode does the checking), and the text
is never logged, because a code carries an enrolment token.
"""

import logging
from pathlib import Path

from kiosk import provision_code
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

MAX_FRAME_PIXELS = 4056 * 3040       # the largest camera.width x camera.height the settings allow
MAX_IMAGE_FILE_BYTES = 20 * 1024 * 1024


class CodeReader:
    """Finds and decodes one QR code a frame; a second, upscaled pass helps a code shown from far away.

    ``detector``: "aruco" (cv2.QRCodeDetectorAruco, OpenCV >= 4.8: finds the finder patterns as
    markers, and reads our version 10-15 codes that the classic detector often misses) or
    "classic" (cv2.QRCodeDetector); `kiosk bench provision-codes` compares the two.
    """

    def __init__(self, *, detector="aruco", upscale_small_codes=True):
        import cv2

        self._cv2 = cv2
        if detector == "aruco":
            self._detector = cv2.QRCodeDetectorAruco()
        elif detector == "classic":
            self._detector = cv2.QRCodeDetector()
        else:
            raise ValueError(f"detector {detector!r}: expected 'aruco' or 'classic'")
        self.detector = detector
        self.upscale_small_codes = upscale_small_codes

    def read(self, frame):
        """The text of the QR code in ``frame`` (grey or BGR uint8 array), or ``""`` when none reads."""
        cv2 = self._cv2
        if frame is None or frame.ndim not in (2, 3) or frame.shape[0] * frame.shape[1] > MAX_FRAME_PIXELS:
            return ""
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        text = self._decode(grey)
        if not text and self.upscale_small_codes and grey.shape[0] * grey.shape[1] * 4 <= MAX_FRAME_PIXELS:
            text = self._decode(cv2.resize(grey, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC))
        return text[:provision_code.MAX_CODE_CHARS + 1]     # one over: decode() names it too large

    def _decode(self, grey):
        try:
            text, points, _ = self._detector.detectAndDecode(grey)
        except self._cv2.error:        # OpenCV raises on some degenerate quadrilaterals
            return ""
        return text if points is not None and text else ""


def read_image_file(path):
    """The code in a picture file (PNG/JPEG), for `kiosk provision --code-image`."""
    import cv2
    import numpy as np

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            raise ProvisioningError(f"{path}: {size} bytes is too large for a picture of a code")
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as e:
        raise ProvisioningError(f"{path}: cannot read it ({e.strerror})") from None
    frame = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if frame is None:
        raise ProvisioningError(f"{path}: not a picture OpenCV can read")
    text = CodeReader().read(frame)
    if not text:
        raise ProvisioningError(f"{path}: no readable QR code in the picture")
    return text


class CodeScanner:
    """Provisioning mode over camera frames: read, verify, and report each different code once.

    ``check(text)`` is the kiosk's verification (provision_code.decode with its keys and used
    list). The same refused code held in front of the camera is reported once, not every frame.
    """

    def __init__(self, *, check, reader=None):
        self.check = check
        self.reader = reader or CodeReader()
        self.last_text = None

    def offer(self, frame):
        """Return ('accepted', Code), ('refused', CodeRefusedError), or None for nothing new."""
        text = self.reader.read(frame)
        if not text or text == self.last_text:
            return None
        self.last_text = text
        try:
            code = self.check(text)
        except provision_code.CodeRefusedError as e:
            log.info("a code was shown and refused: %s", e.reason)
            return ("refused", e)
        log.info("a signed code was shown: id %s", code.code_id[:8])
        return ("accepted", code)


def scan_camera(camera, scanner, *, timeout_s, clock, on_refused=None, stop_at_refusal=False):
    """Offer camera frames to ``scanner`` until a code is accepted (return its text) or ``timeout_s``.

    ``on_refused(error)`` is told about each different refused code (the screen shows why).
    Returns None when the time ran out with no accepted code, or at the first refusal with
    ``stop_at_refusal`` (the admin page: the technician reads why at once).
    """
    from kiosk.errors import CameraError

    deadline = clock.monotonic() + timeout_s
    last_index = None
    while clock.monotonic() < deadline:
        try:
            frame = camera.wait_for_frame(min(5.0, max(0.1, deadline - clock.monotonic())), after_index=last_index)
        except CameraError as e:
            if not camera.is_running:
                raise
            log.warning("no frame while looking for a code: %s", e)   # a slow frame: the driver recovers
            continue
        last_index = frame.index
        verdict = scanner.offer(frame.image)
        if verdict is None:
            continue
        if verdict[0] == "accepted":
            return scanner.last_text
        if on_refused is not None:
            on_refused(verdict[1])
        if stop_at_refusal:
            return None
    return None
