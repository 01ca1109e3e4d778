"""`kiosk bench voice`: accuracy and speed of the voice print on a folder of speakers.

DIR holds one sub-folder per speaker of 16 kHz mono recordings (FLAC or WAV), each a short
prompt. Every recording is trimmed to its speech by the same voice activity detection the
kiosk runs; a speaker's trimmed prompts, in file-name order, are joined into 3.0 s utterances,
each prompt used at most once (the rest of the last prompt in an utterance is dropped).
Each run of 3 consecutive utterances of a speaker is one enrolment (the mean of their unit
embeddings); every other utterance of that speaker is a genuine trial against it, and every
utterance of every other speaker an impostor trial. Reported: EER, TAR at FAR 1e-2 and 1e-3,
the worst speaker pairs (impostor acceptance at the FAR 1e-2 threshold), a held-out check of
the threshold rule (thresholds fitted on the speakers at even positions in name order,
applied to the others), and latency per 3 s utterance at 1 thread (features, model, total;
also the total as CPU time of the thread, which waiting for a busy core does not inflate).

``--digit-strings N`` also measures the digit check (``voice.digit_check``) on N readings made
by the microphone simulator (it needs the simulators and Debian asterisk-core-sounds-en-g722):
Allison reads about 2 s of her prompts from DIR, then 4 random digits (seeded by ``--seed``);
each reading goes through the kiosk's quality gate, then the check is asked for the digits
read (heard?) and for other digits (each one + 1: falsely heard?); time per check, wall and
CPU. One speaker, studio recordings of single digits joined: a smoke test, not an accuracy
figure for people reading at a kiosk.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from kiosk.bench import face_protocol as protocol

SAMPLE_RATE = 16000
UTTERANCE_S = 3.0
ENROL_UTTERANCES = 3
FARS = {"1e-2": 1e-2, "1e-3": 1e-3}
WORST_PAIRS = 5
EXTENSIONS = (".flac", ".wav")


def register(sub):
    parser = sub.add_parser("voice", help="voice print accuracy (EER, TAR at FAR) and latency",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, metavar="DIR", help="folder of per-speaker recording folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    parser.add_argument("--digit-strings", type=int, default=0, metavar="N",
                        help="also measure the digit check on N simulated readings (needs the simulators)")
    parser.add_argument("--seed", type=int, default=1, help="digit strings of --digit-strings")
    parser.set_defaults(func=run)


def _progress(text):
    print(f"kiosk bench voice: {text}", file=sys.stderr, flush=True)


def read_audio(path):
    """16 kHz mono float32 samples of one recording; other rates or channel counts are refused."""
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE or samples.shape[1] != 1:
        raise ValueError(f"{path}: need 16 kHz mono, got {rate} Hz with {samples.shape[1]} channel(s)")
    return samples[:, 0]


def list_speakers(root):
    """``[(name, [recording paths in name order])]`` of every sub-folder holding recordings."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    speakers = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        if files:
            speakers.append((folder.name, files))
    if len(speakers) < 2:
        raise FileNotFoundError(f"{root}: need at least two speaker folders with recordings")
    return speakers


def join_utterances(pieces, *, length=int(UTTERANCE_S * SAMPLE_RATE)):
    """Utterances of exactly ``length`` samples from consecutive pieces, none used twice."""
    utterances, current = [], []
    filled = 0
    for piece in pieces:
        if piece.size == 0:
            continue
        current.append(piece)
        filled += piece.size
        if filled >= length:
            utterances.append(np.concatenate(current)[:length])
            current, filled = [], 0
    return utterances


def build_trials(labels):
    """``(enrolments, genuine, impostor)``: enrolments as index triples; trials as (enrolment, probe)."""
    labels = np.asarray(labels)
    enrolments, owners = [], []
    for speaker in np.unique(labels):
        own = np.flatnonzero(labels == speaker)
        for start in range(0, len(own) - ENROL_UTTERANCES + 1, ENROL_UTTERANCES):
            enrolments.append(own[start:start + ENROL_UTTERANCES])
            owners.append(speaker)
    genuine, impostor = [], []
    for e, (members, owner) in enumerate(zip(enrolments, owners)):
        for probe in range(len(labels)):
            if labels[probe] != owner:
                impostor.append((e, probe))
            elif probe not in members:
                genuine.append((e, probe))
    return enrolments, np.asarray(owners), np.asarray(genuine), np.asarray(impostor)


def templates(embeddings, enrolments):
    """Unit templates: the normalised mean of each enrolment's unit embeddings."""
    rows = np.stack([embeddings[list(members)].mean(axis=0) for members in enrolments])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def scores(template_rows, embeddings, trials):
    """Cosine score of each (enrolment, probe) trial."""
    if len(trials) == 0:
        return np.zeros(0)
    return np.einsum("ij,ij->i", template_rows[trials[:, 0]], embeddings[trials[:, 1]])


def accuracy(genuine, impostor):
    """EER and TAR at each FAR with its threshold."""
    tar = {}
    for key, far in FARS.items():
        rate, threshold = protocol.tar_at_far(genuine, impostor, far)
        tar[key] = {"tar": round(rate, 4), "threshold": round(threshold, 4)}
    return {"eer": round(protocol.equal_error_rate(genuine, impostor), 4), "tar_at_far": tar}


def worst_pairs(owners, labels, impostor_trials, impostor_scores, threshold, names):
    """Speaker pairs (enrolled, probe) ranked by impostor acceptance at ``threshold``."""
    rows = {}
    for (e, probe), score in zip(impostor_trials, impostor_scores):
        rows.setdefault((int(owners[e]), int(labels[probe])), []).append(score)
    ranked = []
    for (enrolled, probe), values in rows.items():
        values = np.asarray(values)
        ranked.append({"enrolled": names[enrolled], "probe": names[probe], "trials": len(values),
                       "accepted": round(float((values > threshold).mean()), 4),
                       "mean_score": round(float(values.mean()), 4), "max_score": round(float(values.max()), 4)})
    ranked.sort(key=lambda r: (-r["accepted"], -r["max_score"]))
    return ranked[:WORST_PAIRS]


def held_out(labels, owners, genuine_trials, impostor_trials, genuine_scores, impostor_scores):
    """Thresholds fitted at each FAR on even-position speakers, measured on the others."""
    fit = owners % 2 == 0
    gen_fit = fit[genuine_trials[:, 0]]
    imp_fit = fit[impostor_trials[:, 0]] & (labels[impostor_trials[:, 1]] % 2 == 0)
    imp_test = ~fit[impostor_trials[:, 0]] & (labels[impostor_trials[:, 1]] % 2 == 1)
    out = {}
    for key, far in FARS.items():
        threshold = protocol.threshold_at_far(impostor_scores[imp_fit], far)
        test_far = float((impostor_scores[imp_test] > threshold).mean()) if imp_test.any() else math.nan
        test_tar = float((genuine_scores[~gen_fit] > threshold).mean()) if (~gen_fit).any() else math.nan
        out[key] = {"threshold": round(threshold, 4), "far": round(test_far, 4), "tar": round(test_tar, 4)}
    return out


def measure(dataset, *, model_id="campplus-fp16-v1"):
    """Every figure of the bench as a dict (see the module docstring)."""
    from kiosk.models import vad as vad_module
    from kiosk.models import voice_features
    from kiosk.models.voice_embedder import load_voice_embedder

    speakers = list_speakers(dataset)
    vad = vad_module.Vad()
    embedder = load_voice_embedder(model_id, threads=1)
    utterances, labels, vad_ms = [], [], []
    for index, (name, files) in enumerate(speakers):
        pieces = []
        for path in files:
            samples = read_audio(path)
            t0 = time.perf_counter()
            pieces.append(vad.trim(samples))
            vad_ms.append((time.perf_counter() - t0) * 1000.0)
        joined = join_utterances(pieces)
        utterances.extend(joined)
        labels.extend([index] * len(joined))
        _progress(f"{name}: {len(files)} recordings, {len(joined)} utterances of {UTTERANCE_S:.0f} s")
    labels = np.asarray(labels)
    embeddings, timings = [], []
    for samples in utterances:
        c0, t0 = time.thread_time(), time.perf_counter()
        features = voice_features.cmn(voice_features.fbank(samples))
        t1 = time.perf_counter()
        embeddings.append(embedder.embed_features(features))
        t2, c2 = time.perf_counter(), time.thread_time()
        # CPU time of this thread as well: on a shared machine wall time includes waiting for a core
        timings.append({"features": (t1 - t0) * 1000.0, "model": (t2 - t1) * 1000.0, "total": (t2 - t0) * 1000.0,
                        "total_cpu": (c2 - c0) * 1000.0})
    embeddings = np.stack(embeddings)
    enrolments, owners, genuine_trials, impostor_trials = build_trials(labels)
    rows = templates(embeddings, enrolments)
    genuine = scores(rows, embeddings, genuine_trials)
    impostor = scores(rows, embeddings, impostor_trials)
    names = [name for name, _ in speakers]
    result = {"speakers": len(speakers), "speaker_names": names, "utterances": len(utterances),
              "enrolments": len(enrolments), "trials": {"genuine": len(genuine), "impostor": len(impostor)},
              **accuracy(genuine, impostor)}
    threshold = result["tar_at_far"]["1e-2"]["threshold"]
    result["worst_pairs"] = worst_pairs(owners, labels, impostor_trials, impostor, threshold, names)
    result["held_out"] = held_out(labels, owners, genuine_trials, impostor_trials, genuine, impostor)
    latency = protocol.latency_summary(timings)
    latency["vad_per_recording"] = protocol.latency_summary([{"vad": ms} for ms in vad_ms])["vad"]
    result["latency_ms"] = latency
    result["model"] = {"id": embedder.model_id, "file": embedder.model.name, "runtime": embedder.model.runtime,
                       "threads": embedder.model.threads}
    return result


def measure_digits(dataset, count, *, seed=1):
    """The digit check on ``count`` simulated readings of a phrase then 4 digits (see the docstring)."""
    import random

    from kiosk.models import vad as vad_module
    from kiosk.models.spoken_digits import SpokenDigits
    from kiosk.models.voice_quality import assess
    try:
        from kiosk_sim.microphone import DIGIT_SPEAKER, build
    except ImportError:
        raise ValueError("--digit-strings needs the simulators: make test, or pip install ./hw-sim") from None
    dataset = Path(dataset)
    if not (dataset / DIGIT_SPEAKER).is_dir():
        raise ValueError(f"--digit-strings needs {dataset / DIGIT_SPEAKER} (the speaker of the digit recordings)")
    vad = vad_module.Vad()
    checker = SpokenDigits(vad=vad)
    rng = random.Random(seed)
    heard = false_heard = unusable = 0
    timings = []
    for take in range(count):
        digits = "".join(str(rng.randrange(10)) for _ in range(4))
        other = "".join(str((int(d) + 1) % 10) for d in digits)
        audio = build(f"reading:{DIGIT_SPEAKER}:{take}:{digits}", root=dataset.parent, seed=take)
        quality = assess(audio, vad)
        if not quality.ok:
            unusable += 1
        c0, t0 = time.thread_time(), time.perf_counter()
        heard += checker.check(quality.speech, digits).spoken
        timings.append({"check": (time.perf_counter() - t0) * 1000.0, "check_cpu": (time.thread_time() - c0) * 1000.0})
        false_heard += checker.check(quality.speech, other).spoken
    latency = protocol.latency_summary(timings)
    return {"readings": count, "speaker": DIGIT_SPEAKER, "seed": seed, "heard": heard, "heard_rate": heard / max(count, 1),
            "other_digits_heard": false_heard, "gate_unusable": unusable, "latency_ms": latency}


def _report(result):
    lines = [f"voice print, model {result['model']['id']} ({result['model']['runtime']}, 1 thread)",
             f"{result['speakers']} speakers, {result['utterances']} utterances of {UTTERANCE_S:.0f} s, "
             f"{result['enrolments']} enrolments of {ENROL_UTTERANCES}; trials: {result['trials']['genuine']} "
             f"genuine, {result['trials']['impostor']} impostor",
             f"EER {result['eer'] * 100:.2f}%"]
    for key, row in result["tar_at_far"].items():
        lines.append(f"TAR at FAR {key}: {row['tar'] * 100:.2f}% (threshold {row['threshold']:.3f})")
    lines.append("held out (thresholds from even-position speakers, measured on the others):")
    for key, row in result["held_out"].items():
        lines.append(f"  FAR {key} rule: threshold {row['threshold']:.3f} -> FAR {row['far'] * 100:.2f}%, "
                     f"TAR {row['tar'] * 100:.2f}%")
    lines.append("worst pairs at the FAR 1e-2 threshold (enrolled <- probe: accepted, mean, max score):")
    for row in result["worst_pairs"]:
        lines.append(f"  {row['enrolled']} <- {row['probe']}: {row['accepted'] * 100:.1f}% of {row['trials']}, "
                     f"{row['mean_score']:.3f}, {row['max_score']:.3f}")
    lines.append("latency per 3 s utterance, ms (median / p95):")
    for stage in ("features", "model", "total", "total_cpu", "vad_per_recording"):
        row = result["latency_ms"][stage]
        lines.append(f"  {stage:<18} {row['median']:>8.2f} {row['p95']:>8.2f}")
    digits = result.get("digit_check")
    if digits:
        lines.append(f"digit check, {digits['readings']} simulated readings by {digits['speaker']}: digits shown heard "
                     f"{digits['heard']}, other digits heard {digits['other_digits_heard']}, gate refused "
                     f"{digits['gate_unusable']}; ms per check (median / p95): wall {digits['latency_ms']['check']['median']:.1f}"
                     f" / {digits['latency_ms']['check']['p95']:.1f}, CPU {digits['latency_ms']['check_cpu']['median']:.1f}"
                     f" / {digits['latency_ms']['check_cpu']['p95']:.1f}")
    return "\n".join(lines)


def run(args):
    try:
        result = measure(args.dataset)
        if args.digit_strings > 0:
            result["digit_check"] = measure_digits(args.dataset, args.digit_strings, seed=args.seed)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"kiosk bench voice: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else _report(result))
    return 0
