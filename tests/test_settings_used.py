"""Every setting does something: each key of the settings sections is read by some code.

The rule, applied to an AST of every module under ``kiosk/`` except ``kiosk/config.py`` (where
each key is declared, validated and rendered, which is not use). The simulators in ``hw-sim/``
are not scanned: a key only a simulator reads does nothing on a kiosk.

A key ``S.K`` (section ``S``, key ``K``) counts as read when an expression of *section type S*
has ``K`` read from it, in one of these forms:

- ``E.K`` as an attribute load;
- ``getattr(E, "K")``;
- ``getattr(E, v)`` where ``v`` is the target of a ``for`` loop or comprehension over a literal
  tuple/list/set of strings (each string counts), or over ``X.__dataclass_fields__`` /
  ``fields(X)`` inside a class (each field the enclosing class declares counts; this is how
  ``QualityLimits.from_settings`` copies the face section).

An expression has *section type S* when it is:

- ``R.S`` where ``R`` is a settings root: a name or attribute whose identifier contains
  ``settings`` and is not itself known to hold a section, a call to ``load``/``check_file``/
  ``build``/``load_settings``, ``R.replace(...)``, or a name assigned from a root;
- a name assigned from a section-typed expression in the same function (``a = settings.attendance``,
  also element-wise in ``s, f = gpio_settings, factory``);
- ``self.X`` where the same class assigns ``self.X = <section-typed expression>``;
- a function parameter when some call resolved to that function passes a section-typed argument
  in its place (``FaceEngine.from_settings(settings.face)`` types ``face_settings`` inside it, and
  types flow on through further calls until nothing changes). Calls resolve by name: ``f(...)``
  to module-level functions or classes (their ``__init__``) named ``f``; ``N.f(...)`` (or
  ``a.b.N.f``) to method ``f`` of a class ``N`` or function ``f`` of a module named ``N``;
  ``self.f``/``cls.f`` to the enclosing class's method.

Not counted: writes (``settings.replace(sync={...})``), ``asdict``/``as_dict`` dumps, ``hasattr``,
and any attribute of the same name on an object that is not section-typed (``self.rotation`` of
the camera driver does not read ``ui.rotation``). Typing is flow-insensitive (a name once
assigned a section stays typed in that function), which can only over-count within one function.
"""

import ast
import dataclasses
from pathlib import Path

from kiosk import config

ROOT = Path(__file__).resolve().parent.parent
ROOT_CALLS = {"load", "check_file", "build", "load_settings"}
ROOT_TYPE = "<settings>"


def declared_keys():
    """{section: set of keys} from the section dataclasses in kiosk/config.py."""
    return {name: {f.name for f in dataclasses.fields(cls)} for name, cls in config.SECTIONS.items()}


def _last_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class _Func:
    """One function (or a module body) with where it lives."""

    def __init__(self, node, module, cls):
        self.node, self.module, self.cls = node, module, cls
        self.env = {}          # local name -> set of types
        self.params = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            self.params = [p.arg for p in a.posonlyargs + a.args]
            self.kwonly = {p.arg for p in a.kwonlyargs}
            if cls is not None and self.params and self.params[0] in ("self", "cls"):
                self.params = self.params[1:]
        else:
            self.kwonly = set()

    def body_nodes(self):
        """Every node of this function, not descending into nested defs or classes."""
        stack = list(self.node.body)
        while stack:
            n = stack.pop()
            yield n
            for child in ast.iter_child_nodes(n):
                if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    stack.append(child)


class Checker:
    """Find which keys of ``sections`` the given sources read (see the module docstring)."""

    def __init__(self, sections, sources):
        self.sections = sections
        self.funcs = []
        self.class_attrs = {}      # (module, class) -> {attr: set of types}
        self.class_fields = {}     # (module, class) -> declared field names
        self.by_name = {}          # function name -> [_Func] (module level)
        self.methods = {}          # (class, name) -> [_Func]
        self.module_funcs = {}     # (module, name) -> [_Func]
        for module, text in sources.items():
            tree = ast.parse(text)
            self.funcs.append(_Func(tree, module, None))
            self._index(tree, module, None)

    def _index(self, node, module, cls):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                key = (module, child.name)
                self.class_fields[key] = {s.target.id for s in child.body
                                          if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
                self._index(child, module, child.name)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                f = _Func(child, module, cls)
                self.funcs.append(f)
                if cls is None:
                    self.by_name.setdefault(child.name, []).append(f)
                    self.module_funcs.setdefault((module, child.name), []).append(f)
                else:
                    self.methods.setdefault((cls, child.name), []).append(f)
                self._index(child, module, cls)

    # -- typing -------------------------------------------------------------------------------

    def type_of(self, expr, func):
        """The set of types ``expr`` may hold: section names and/or the settings root."""
        if isinstance(expr, ast.Name):
            if expr.id in func.env:
                return func.env[expr.id]
            return {ROOT_TYPE} if "settings" in expr.id.lower() else set()
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self" and func.cls is not None:
                known = self.class_attrs.get((func.module, func.cls), {})
                if expr.attr in known:
                    return known[expr.attr]
            if expr.attr in self.sections and ROOT_TYPE in self.type_of(expr.value, func):
                return {expr.attr}
            return {ROOT_TYPE} if "settings" in expr.attr.lower() else set()
        if isinstance(expr, ast.Call):
            name = _last_name(expr.func)
            if name in ROOT_CALLS:
                return {ROOT_TYPE}
            if name == "replace" and isinstance(expr.func, ast.Attribute) \
                    and ROOT_TYPE in self.type_of(expr.func.value, func):
                return {ROOT_TYPE}
        return set()

    def _targets(self, call, func):
        f = call.func
        if isinstance(f, ast.Name):
            found = list(self.by_name.get(f.id, []))
            found += self.methods.get((f.id, "__init__"), [])
            return found
        if isinstance(f, ast.Attribute):
            owner = _last_name(f.value)
            if owner in ("self", "cls") and func.cls is not None:
                return self.methods.get((func.cls, f.attr), [])
            found = list(self.methods.get((owner, f.attr), []))
            found += [g for (module, name), gs in self.module_funcs.items()
                      if name == f.attr and Path(module).stem == owner for g in gs]
            return found
        return []

    @staticmethod
    def _bind(table, name, kinds):
        """Add ``kinds`` to what ``name`` may hold; True when that grew (types only grow: this ends)."""
        have = table.setdefault(name, set())
        if kinds - have:
            have |= kinds
            return True
        return False

    def infer(self):
        """Propagate section types until nothing changes."""
        changed = True
        while changed:
            changed = False
            for func in self.funcs:
                for node in func.body_nodes():
                    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        pairs = [(t, node.value) for t in targets]
                        pairs += [(name, value) for tup in targets  # s, f = gpio_settings, pin_factory
                                  if isinstance(tup, ast.Tuple) and isinstance(node.value, ast.Tuple)
                                  and len(tup.elts) == len(node.value.elts)
                                  for name, value in zip(tup.elts, node.value.elts)]
                        for t, value in pairs:
                            kinds = self.type_of(value, func)
                            if isinstance(t, ast.Name) and kinds:
                                changed |= self._bind(func.env, t.id, kinds)
                            elif (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                                  and t.value.id == "self" and func.cls is not None and kinds):
                                attrs = self.class_attrs.setdefault((func.module, func.cls), {})
                                changed |= self._bind(attrs, t.attr, kinds)
                    elif isinstance(node, ast.Call):
                        for target in self._targets(node, func):
                            for i, arg in enumerate(node.args):
                                if i < len(target.params) and not isinstance(arg, ast.Starred):
                                    changed |= self._bind(target.env, target.params[i], self.type_of(arg, func))
                            for kw in node.keywords:
                                if kw.arg in target.params or kw.arg in target.kwonly:
                                    changed |= self._bind(target.env, kw.arg, self.type_of(kw.value, func))

    # -- reads --------------------------------------------------------------------------------

    def _loop_names(self, func, var):
        """Strings a loop variable ``var`` takes in this function (literal tuples, dataclass fields)."""
        names = set()
        for node in func.body_nodes():
            gens = []
            if isinstance(node, (ast.For, ast.AsyncFor)):
                gens.append((node.target, node.iter))
            elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                gens += [(g.target, g.iter) for g in node.generators]
            for target, it in gens:
                if not (isinstance(target, ast.Name) and target.id == var):
                    continue
                if isinstance(it, (ast.Tuple, ast.List, ast.Set)):
                    names |= {e.value for e in it.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                elif func.cls is not None and (
                        (isinstance(it, ast.Attribute) and it.attr == "__dataclass_fields__")
                        or (isinstance(it, ast.Call) and _last_name(it.func) == "fields")):
                    names |= self.class_fields.get((func.module, func.cls), set())
        return names

    def reads(self):
        """{(section, key)} read anywhere in the sources."""
        self.infer()
        found = set()
        for func in self.funcs:
            for node in func.body_nodes():
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                    for kind in self.type_of(node.value, func) & self.sections.keys():
                        if node.attr in self.sections[kind]:
                            found.add((kind, node.attr))
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                      and len(node.args) >= 2):
                    kinds = self.type_of(node.args[0], func) & self.sections.keys()
                    name = node.args[1]
                    if isinstance(name, ast.Constant) and isinstance(name.value, str):
                        candidates = {name.value}
                    elif isinstance(name, ast.Name):
                        candidates = self._loop_names(func, name.id)
                    else:
                        candidates = set()
                    found |= {(kind, k) for kind in kinds for k in candidates & self.sections[kind]}
        return found


def unused_keys(sections, sources):
    """Sorted 'section.key' names no source reads."""
    read = Checker(sections, sources).reads()
    return sorted(f"{s}.{k}" for s, keys in sections.items() for k in keys if (s, k) not in read)


def kiosk_sources():
    config_path = ROOT / "kiosk" / "config.py"
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in sorted((ROOT / "kiosk").rglob("*.py")) if p != config_path}


def test_every_setting_is_read_by_some_code():
    unused = unused_keys(declared_keys(), kiosk_sources())
    assert unused == [], ("settings no code reads (remove them from kiosk/config.py and the docs, "
                          f"or use them): {', '.join(unused)}")


# -- the checker itself ---------------------------------------------------------------------------

SECTIONS = {"ui": {"rotation", "language", "dim_after_s"},
            "face": {"min_face_px", "max_yaw_deg", "threads"},
            "gpio": {"door_pin", "red_pin"},
            "attendance": {"repeat_guard_s", "result_s"}}

READER = '''
from dataclasses import dataclass
from kiosk.models import quality

def idle(settings):
    return settings.ui.dim_after_s

def guard(self):
    a = self.settings.attendance
    return a.repeat_guard_s

class Camera:
    def __init__(self, rotation):
        self.rotation = rotation          # the camera's own attribute, not ui.rotation

@dataclass
class QualityLimits:
    min_face_px: int = 80
    max_yaw_deg: float = 25.0

    @classmethod
    def from_settings(cls, face):
        return cls(**{n: getattr(face, n) for n in cls.__dataclass_fields__ if hasattr(face, n)})

class Engine:
    @classmethod
    def from_settings(cls, face_settings):
        return quality.QualityLimits.from_settings(face_settings)

def build(settings):
    return Engine.from_settings(settings.face)

class Board:
    def __init__(self, gpio_settings):
        self.s = gpio_settings

    def pins(self):
        return [getattr(self.s, name) for name in ("door_pin",)]

def make(settings):
    return Board(settings.gpio)
'''


def test_checker_flags_a_key_that_is_only_declared():
    declared_only = {**SECTIONS, "ui": SECTIONS["ui"] | {"only_declared"}}
    assert "ui.only_declared" in unused_keys(declared_only, {"m.py": READER})


def test_checker_counts_each_documented_form_of_read_and_nothing_else():
    # read: ui.dim_after_s (chain), attendance.repeat_guard_s (alias of self.settings.attendance),
    # face.min_face_px and max_yaw_deg (getattr over the class's dataclass fields, reached through
    # two from_settings calls), gpio.door_pin (getattr over a literal tuple, section kept in self.s)
    # not read: ui.rotation (only self.rotation of an unrelated object), ui.language,
    # face.threads (not a field of QualityLimits), gpio.red_pin, attendance.result_s
    assert unused_keys(SECTIONS, {"m.py": READER}) == [
        "attendance.result_s", "face.threads", "gpio.red_pin", "ui.language", "ui.rotation"]


def test_checker_ignores_the_declaration_and_writes():
    declaration = '''
from dataclasses import dataclass

@dataclass
class UiSettings:
    rotation: int = 0
    language: str = "ar"

def configure(settings):
    return settings.replace(ui={"rotation": 90, "language": "en"})
'''
    assert unused_keys({"ui": {"rotation", "language"}}, {"m.py": declaration}) == ["ui.language", "ui.rotation"]
