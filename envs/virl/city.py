"""Synthetic cities: a street graph, named landmarks and instructed routes, all from a seed.

The street graph is a jittered, slightly rotated grid with some segments dropped and some
diagonal streets added (so legs run northeast/northwest too). Every segment gets a mid-block
point, so a route alternates intersections and mid-block points and the intersection flag means
something. Landmarks stand 8 m off their node. A route is a shortest path between two landmark
nodes whose turn points all have a landmark to name; its instructions give both relative and
absolute directions ("Turn right to face east at the intersection near Joe's Pizza.").

Everything is deterministic for (city, seed, num_routes) and cached in memory.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache

from envs.virl.directions import (
    bearing,
    compass_label,
    distance_m,
    left_or_right,
    offset_latlng,
    relative_label,
)
from envs.virl.routes import Milestone, Place, Route
from envs.virl.styles import KINDS, STYLES, CityStyle, street_name

VLN_MINI_CITIES: tuple[str, ...] = (
    "milan",
    "new_delhi",
    "buenos_aires",
    "london",
    "hong_kong",
    "new_york",
    "melbourne",
    "lagos",
    "san_francisco",
)
VLN_MINI_ROUTES_PER_CITY = 2
LANDMARK_OFFSET_M = 8.0
MIN_ROUTE_EDGES, MAX_ROUTE_EDGES = 3, 10
"""Street segments per route (each segment is two points: mid-block, then the next node)."""
MAX_TURNS = 4
MAX_ATTEMPTS_PER_ROUTE = 400
"""Rejection-sampling cap; a city that cannot yield its routes is a generator bug, so it raises."""


@dataclass(frozen=True)
class StreetNode:
    node_id: int
    lat: float
    lng: float
    intersection: bool

    @property
    def latlng(self) -> tuple[float, float]:
        return (self.lat, self.lng)


@dataclass(frozen=True)
class Street:
    """A street segment between two nodes (a grid node and a mid-block point)."""

    a: int
    b: int
    name: str


@dataclass(frozen=True)
class City:
    """A generated city: its graph, landmarks (with the node each stands at) and routes."""

    name: str
    seed: int
    style: CityStyle
    nodes: tuple[StreetNode, ...]
    streets: tuple[Street, ...]
    landmarks: tuple[Place, ...]
    landmark_nodes: tuple[int, ...]
    """landmark_nodes[k] is the node landmarks[k] stands at."""
    routes: tuple[Route, ...]


def stable_seed(*parts: object) -> int:
    """A seed that, unlike hash(str), is the same in every process."""
    return zlib.crc32("|".join(map(str, parts)).encode())


# ---------------------------------------------------------------- street graph


def _grid_nodes(style: CityStyle, rng: random.Random) -> list[tuple[float, float]]:
    ns, ew = style.block_m
    rot = math.radians(style.rotation_deg)
    out = []
    for r in range(style.rows):
        for c in range(style.cols):
            x = c * ew + rng.uniform(-1, 1) * style.jitter * ew
            y = r * ns + rng.uniform(-1, 1) * style.jitter * ns
            # Rotate clockwise by rotation_deg (headings are clockwise from north).
            xr = x * math.cos(rot) + y * math.sin(rot)
            yr = -x * math.sin(rot) + y * math.cos(rot)
            out.append(offset_latlng(style.center, xr, yr))
    return out


def _connected(n: int, edges: set[tuple[int, int]]) -> bool:
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen, stack = {0}, [0]
    while stack:
        for nb in adj[stack.pop()]:
            if nb not in seen:
                seen.add(nb)
                stack.append(nb)
    return len(seen) == n


def _grid_edges(style: CityStyle, rng: random.Random) -> dict[tuple[int, int], str]:
    rows, cols = style.rows, style.cols
    named: dict[tuple[int, int], str] = {}
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                named[(i, i + 1)] = street_name(style, r, avenue=False)
            if r + 1 < rows:
                named[(i, i + cols)] = street_name(style, c, avenue=True)
    for r in range(rows - 1):
        for c in range(cols - 1):
            if rng.random() < style.diagonal_p:
                i = r * cols + c
                edge = (i, i + cols + 1) if rng.random() < 0.5 else (i + 1, i + cols)
                diagonal = f"{style.words[c]} Diagonal"
                named[edge] = "Broadway" if style.name == "new_york" else diagonal
    for edge in sorted(named):
        if rng.random() < style.drop_edge_p:
            rest = set(named) - {edge}
            if _connected(rows * cols, rest):
                del named[edge]
    return named


def _build_graph(style: CityStyle, rng: random.Random) -> tuple[list[StreetNode], list[Street]]:
    grid = _grid_nodes(style, rng)
    named = _grid_edges(style, rng)
    degree = [0] * len(grid)
    for a, b in named:
        degree[a] += 1
        degree[b] += 1
    nodes = [StreetNode(i, lat, lng, degree[i] >= 3) for i, (lat, lng) in enumerate(grid)]
    streets: list[Street] = []
    for (a, b), name in sorted(named.items()):
        mid = ((grid[a][0] + grid[b][0]) / 2, (grid[a][1] + grid[b][1]) / 2)
        m = len(nodes)
        nodes.append(StreetNode(m, mid[0], mid[1], False))
        streets += [Street(a, m, name), Street(m, b, name)]
    return nodes, streets


# ---------------------------------------------------------------- landmarks


def _landmark_names(style: CityStyle, rng: random.Random) -> list[str]:
    names = [f"{w}'s {k}" for w in style.words for k in KINDS]
    names += [f"{w} {k}" for w in style.words for k in KINDS]
    rng.shuffle(names)
    return names


def _place_landmarks(
    nodes: list[StreetNode], adj: dict[int, list[int]], style: CityStyle, rng: random.Random
) -> tuple[list[Place], list[int]]:
    names = iter(_landmark_names(style, rng))
    places: list[Place] = []
    at: list[int] = []
    for node in nodes:
        bearings = sorted(bearing(node.latlng, nodes[nb].latlng) for nb in adj[node.node_id])
        count = 0
        if node.intersection or len(bearings) != 2 or rng.random() < 0.5:
            # Grid nodes: usually one landmark, sometimes two (a distractor at turns).
            count = (rng.random() < 0.7) + (rng.random() < 0.2)
        elif rng.random() < 0.3:
            count = 1
        gaps = _gaps(bearings)
        rng.shuffle(gaps)
        for k in range(min(count, len(gaps))):
            pos = offset_latlng(
                node.latlng,
                LANDMARK_OFFSET_M * math.sin(math.radians(gaps[k])),
                LANDMARK_OFFSET_M * math.cos(math.radians(gaps[k])),
            )
            places.append(Place(next(names), pos[0], pos[1]))
            at.append(node.node_id)
    return places, at


def _gaps(bearings: list[float]) -> list[float]:
    """Bearings halfway between neighbouring streets (where buildings stand)."""
    if not bearings:
        return [45.0, 225.0]
    if len(bearings) == 1:
        return [(bearings[0] + 90) % 360, (bearings[0] + 270) % 360]
    out = []
    for k, b in enumerate(bearings):
        nxt = bearings[(k + 1) % len(bearings)] + (360 if k + 1 == len(bearings) else 0)
        out.append(((b + nxt) / 2) % 360)
    return out


# ---------------------------------------------------------------- routes


def _shortest_paths(adj: dict[int, list[int]], nodes: list[StreetNode], src: int) -> dict[int, int]:
    """Dijkstra parents from src (ties broken by node id, so the result is deterministic)."""
    dist = {src: 0.0}
    parent = {src: src}
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v in adj[u]:
            nd = d + distance_m(nodes[u].latlng, nodes[v].latlng)
            if nd < dist.get(v, math.inf) - 1e-9:
                dist[v] = nd
                parent[v] = u
                heapq.heappush(heap, (nd, v))
    return parent


def _path(parent: dict[int, int], dst: int) -> list[int]:
    out = [dst]
    while parent[out[-1]] != out[-1]:
        out.append(parent[out[-1]])
    return out[::-1]


def _turn_points(points: list[tuple[float, float]], start_heading: float) -> list[int]:
    """Points where the compass direction of travel changes (0 = the initial turn)."""
    out = []
    heading = start_heading
    for i in range(len(points) - 1):
        nxt = bearing(points[i], points[i + 1])
        if compass_label(nxt) != compass_label(heading):
            out.append(i)
        heading = nxt
    return out


def make_route(
    route_id: str,
    city: str,
    points: list[tuple[float, float]],
    intersections: list[bool],
    landmarks_at: list[list[Place]],
    start_heading: float,
) -> Route:
    """Build a route with its milestones and instructions; every turn point needs a landmark."""
    turns = _turn_points(points, start_heading)
    start, dest = landmarks_at[0][0], landmarks_at[-1][0]
    milestones: list[Milestone] = []
    for i in [*turns, len(points) - 1]:
        lm = start if i == 0 else landmarks_at[i][0]
        arrive = start_heading if i == 0 else bearing(points[i - 1], points[i])
        side = f"on your {left_or_right(arrive, bearing(points[i], lm.latlng))}"
        where = "the intersection" if intersections[i] else "the corner"
        if i == len(points) - 1:
            approach = f"Move forward until you reach {lm.name} {side}."
            text = f"Stop at {lm.name}, your destination."
            milestones.append(Milestone(i, lm.name, "stop", None, approach, text))
            continue
        new = bearing(points[i], points[i + 1])
        turn = f"turn {relative_label(arrive, new)} to face {compass_label(new)}"
        if i == 0:
            text = f"Starting at {lm.name}, {turn}."
            milestones.append(Milestone(i, lm.name, "turn", new, "", text))
        else:
            approach = f"Move forward until you reach {where} with {lm.name} {side}."
            text = f"{turn[0].upper()}{turn[1:]} at {where} near {lm.name}."
            milestones.append(Milestone(i, lm.name, "turn", new, approach, text))
    seen = {lm.name: lm for lms in landmarks_at for lm in lms}
    return Route(
        route_id=route_id,
        city=city,
        start_place=start,
        dest_place=dest,
        start_heading=start_heading,
        landmarks=tuple(sorted(seen.values(), key=lambda p: p.name)),
        geocodes=tuple(points),
        intersections=tuple(intersections),
        milestones=tuple(milestones),
    )


def _sample_routes(
    name: str,
    nodes: list[StreetNode],
    adj: dict[int, list[int]],
    landmarks: list[Place],
    landmark_nodes: list[int],
    num_routes: int,
    rng: random.Random,
    id_prefix: str,
) -> list[Route]:
    by_node: dict[int, list[Place]] = {}
    for lm, node in zip(landmarks, landmark_nodes, strict=True):
        by_node.setdefault(node, []).append(lm)
    for lms in by_node.values():
        lms.sort(key=lambda p: p.name)
    anchors = sorted(n for n in by_node if nodes[n].intersection or len(adj[n]) != 2)
    trees: dict[int, dict[int, int]] = {}
    used: set[tuple[int, int]] = set()
    routes: list[Route] = []
    attempts = 0
    while len(routes) < num_routes:
        attempts += 1
        if attempts > MAX_ATTEMPTS_PER_ROUTE * num_routes:
            raise RuntimeError(f"{name}: could only sample {len(routes)} of {num_routes} routes")
        src, dst = rng.choice(anchors), rng.choice(anchors)
        if src == dst or (src, dst) in used:
            continue
        if src not in trees:
            trees[src] = _shortest_paths(adj, nodes, src)
        if dst not in trees[src]:
            continue
        path = _path(trees[src], dst)
        if not MIN_ROUTE_EDGES * 2 <= len(path) - 1 <= MAX_ROUTE_EDGES * 2:
            continue
        points = [nodes[n].latlng for n in path]
        first = bearing(points[0], points[1])
        # The agent starts facing away from its first leg (another compass sector), so every
        # route opens with a turn, as the paper's instructions do.
        start_heading = (first + rng.uniform(60.0, 300.0)) % 360.0
        turns = _turn_points(points, start_heading)
        inner = [i for i in turns if i > 0]
        if not 1 <= len(inner) <= MAX_TURNS or any(path[i] not in by_node for i in inner):
            continue
        used.add((src, dst))
        routes.append(
            make_route(
                f"{id_prefix}-{len(routes):04d}",
                name,
                points,
                [nodes[n].intersection for n in path],
                [by_node.get(n, []) for n in path],
                start_heading,
            )
        )
    return routes


@lru_cache(maxsize=32)
def generate_city(name: str, seed: int = 0, num_routes: int = 1000) -> City:
    """The synthetic city `name` for a seed, with num_routes routes (cached per arguments)."""
    if name not in STYLES:
        raise ValueError(f"city: {name!r} is not one of {sorted(STYLES)}")
    style = STYLES[name]
    rng = random.Random(stable_seed("city", name, seed))
    nodes, streets = _build_graph(style, rng)
    adj: dict[int, list[int]] = {n.node_id: [] for n in nodes}
    for s in streets:
        adj[s.a].append(s.b)
        adj[s.b].append(s.a)
    landmarks, landmark_nodes = _place_landmarks(nodes, adj, style, rng)
    route_rng = random.Random(stable_seed("routes", name, seed))
    routes = _sample_routes(
        name, nodes, adj, landmarks, landmark_nodes, num_routes, route_rng, f"{name}-s{seed}"
    )
    return City(
        name,
        seed,
        style,
        tuple(nodes),
        tuple(streets),
        tuple(landmarks),
        tuple(landmark_nodes),
        tuple(routes),
    )


@lru_cache(maxsize=8)
def vln_mini_routes(seed: int = 1) -> tuple[Route, ...]:
    """The 18-route OOD benchmark: 2 routes in each of the 9 VLN-mini cities, in a fixed order."""
    out: list[Route] = []
    for name in VLN_MINI_CITIES:
        out += generate_city(name, seed, VLN_MINI_ROUTES_PER_CITY).routes
    return tuple(out)
