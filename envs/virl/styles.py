"""Per-city look and naming of the synthetic cities.

Each city differs in what a vision model sees (sky, ground and building palettes, building
shapes, sign shapes and colours, street furniture) and in its map (block sizes, grid rotation,
irregularity, street and shop names), so training on New York and testing on the other eight
is a real visual shift, as VLN mini is for the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]

KINDS: tuple[str, ...] = (
    "Pizza", "Cafe", "Bakery", "Pharmacy", "Bank", "Hotel", "Bookstore", "Deli", "Gym",
    "Market", "Florist", "Cinema", "Museum", "Library", "Post Office", "Barber", "Bistro",
    "Tailor", "Toy Shop", "Noodle Bar", "Dental Clinic", "Hardware", "Laundromat", "Gallery",
    "Tea House", "Bike Shop", "Wine Bar", "Music Store", "Shoe Store", "Diner",
)  # fmt: skip
"""Kinds of shop; a landmark name is '<word>'s <kind>' or '<word> <kind>'."""


@dataclass(frozen=True)
class CityStyle:
    """How one synthetic city looks and is laid out."""

    name: str
    display_name: str
    center: tuple[float, float]
    """(lat, lng) of the grid's south-west corner."""
    rows: int
    cols: int
    block_m: tuple[float, float]
    """Block size (north-south, east-west) in metres."""
    rotation_deg: float
    """Rotation of the street grid; small so streets stay near their compass direction."""
    jitter: float
    """Random displacement of intersections as a share of the block size."""
    drop_edge_p: float
    """Share of street segments removed (dead ends, plazas)."""
    diagonal_p: float
    """Share of blocks crossed by a diagonal street (gives northeast/northwest legs)."""
    sky: tuple[RGB, RGB]
    """Sky gradient, top to horizon."""
    ground: RGB
    road: RGB
    road_mark: RGB
    buildings: tuple[RGB, ...]
    window: RGB
    roof: str
    """'flat', 'pitched', 'dome', 'stepped' or 'tower'."""
    height_range: tuple[float, float]
    """Building heights as a share of the view height."""
    sign_bg: RGB
    sign_fg: RGB
    sign_shape: str
    """'rect', 'round' or 'banner'."""
    extra: str
    """Street furniture: 'none', 'trees', 'palms', 'hills', 'lamps' or 'haze'."""
    words: tuple[str, ...]
    """Words for shop and street names."""
    street_format: str
    """Format of a street name; {w} is a word, {n} an ordinal."""


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(","))


def _c(hex_code: str) -> RGB:
    return (int(hex_code[1:3], 16), int(hex_code[3:5], 16), int(hex_code[5:7], 16))


STYLES: dict[str, CityStyle] = {
    s.name: s
    for s in (
        CityStyle(
            name="new_york",
            display_name="New York",
            center=(40.748, -73.993),
            rows=10,
            cols=9,
            block_m=(80.0, 120.0),
            rotation_deg=4.0,
            jitter=0.08,
            drop_edge_p=0.06,
            diagonal_p=0.1,
            sky=(_c("#6f9fd8"), _c("#cfe2f3")),
            ground=_c("#8a8a8a"),
            road=_c("#3b3b3b"),
            road_mark=_c("#f2d640"),
            buildings=(_c("#8b4a3c"), _c("#a0522d"), _c("#7a6a5a"), _c("#9c8c7c"), _c("#5d5d66")),
            window=_c("#e8e3c8"),
            roof="flat",
            height_range=(0.35, 0.75),
            sign_bg=_c("#c8102e"),
            sign_fg=_c("#ffffff"),
            sign_shape="rect",
            extra="lamps",
            words=_words(
                "Joe, Katz, Bleecker, Hudson, Astor, Carmine, Delancey, Mulberry, Stuyvesant, "
                "Gansevoort, Orchard, Ludlow, Rivington, Lafayette, Greene, Mercer, Thompson, "
                "Sullivan, Houston, Bowery, Chelsea, Murray"
            ),
            street_format="{n} Street",
        ),
        CityStyle(
            name="milan",
            display_name="Milan",
            center=(45.46, 9.18),
            rows=7,
            cols=7,
            block_m=(70.0, 75.0),
            rotation_deg=-12.0,
            jitter=0.14,
            drop_edge_p=0.1,
            diagonal_p=0.15,
            sky=(_c("#8fb3d9"), _c("#f1e6d0")),
            ground=_c("#b9a88f"),
            road=_c("#6e6259"),
            road_mark=_c("#ffffff"),
            buildings=(_c("#e3c9a0"), _c("#d9a877"), _c("#f0dcc0"), _c("#c98f6b")),
            window=_c("#5a3e2b"),
            roof="pitched",
            height_range=(0.3, 0.5),
            sign_bg=_c("#1f5c3a"),
            sign_fg=_c("#f6e7b0"),
            sign_shape="round",
            extra="none",
            words=_words(
                "Brera, Navigli, Sforza, Duomo, Ticinese, Magenta, Solferino, Garibaldi, Moscova, "
                "Cadorna, Vittoria, Manzoni, Verdi, Torino"
            ),
            street_format="Via {w}",
        ),
        CityStyle(
            name="new_delhi",
            display_name="New Delhi",
            center=(28.61, 77.2),
            rows=7,
            cols=7,
            block_m=(90.0, 95.0),
            rotation_deg=20.0,
            jitter=0.12,
            drop_edge_p=0.1,
            diagonal_p=0.2,
            sky=(_c("#d9c9a3"), _c("#f4ead2")),
            ground=_c("#c2a477"),
            road=_c("#7d6b55"),
            road_mark=_c("#ffffff"),
            buildings=(_c("#e0b870"), _c("#d98c5f"), _c("#f2e3c6"), _c("#c76b4a")),
            window=_c("#3e2f23"),
            roof="dome",
            height_range=(0.25, 0.45),
            sign_bg=_c("#f2a900"),
            sign_fg=_c("#1a1a6e"),
            sign_shape="banner",
            extra="haze",
            words=_words(
                "Lodhi, Janpath, Chandni, Khan, Hauz, Karol, Saket, Lajpat, Rajpath, Connaught, "
                "Sundar, Nizam, Paharganj, Mehrauli"
            ),
            street_format="{w} Marg",
        ),
        CityStyle(
            name="buenos_aires",
            display_name="Buenos Aires",
            center=(-34.61, -58.39),
            rows=7,
            cols=7,
            block_m=(100.0, 100.0),
            rotation_deg=0.0,
            jitter=0.06,
            drop_edge_p=0.06,
            diagonal_p=0.2,
            sky=(_c("#7ab8e6"), _c("#d8ecf7")),
            ground=_c("#9e9e8a"),
            road=_c("#555049"),
            road_mark=_c("#e8e8e8"),
            buildings=(_c("#f1f0e8"), _c("#d9d3c3"), _c("#bfb29e"), _c("#e6c9c9")),
            window=_c("#3a4a5a"),
            roof="stepped",
            height_range=(0.35, 0.6),
            sign_bg=_c("#74acdf"),
            sign_fg=_c("#ffffff"),
            sign_shape="rect",
            extra="trees",
            words=_words(
                "Florida, Corrientes, Lavalle, Tucuman, Viamonte, Cordoba, Paraguay, Suipacha, "
                "Esmeralda, Maipu, Reconquista, Defensa, Bolivar, Peru"
            ),
            street_format="Calle {w}",
        ),
        CityStyle(
            name="london",
            display_name="London",
            center=(51.51, -0.13),
            rows=7,
            cols=7,
            block_m=(65.0, 85.0),
            rotation_deg=10.0,
            jitter=0.16,
            drop_edge_p=0.12,
            diagonal_p=0.15,
            sky=(_c("#9aa5ad"), _c("#d7dbde")),
            ground=_c("#6d7166"),
            road=_c("#2f3033"),
            road_mark=_c("#ffffff"),
            buildings=(_c("#8c3b2a"), _c("#a45a3f"), _c("#c8b99b"), _c("#6b4a3a")),
            window=_c("#2b2b2b"),
            roof="pitched",
            height_range=(0.3, 0.55),
            sign_bg=_c("#0b2d5b"),
            sign_fg=_c("#f0c419"),
            sign_shape="rect",
            extra="lamps",
            words=_words(
                "Camden, Soho, Bloomsbury, Holborn, Fleet, Strand, Mayfair, Chelsea, Kensington, "
                "Marylebone, Fitzrovia, Belgravia, Clerkenwell, Borough"
            ),
            street_format="{w} Road",
        ),
        CityStyle(
            name="hong_kong",
            display_name="Hong Kong",
            center=(22.28, 114.16),
            rows=7,
            cols=7,
            block_m=(60.0, 70.0),
            rotation_deg=-25.0,
            jitter=0.1,
            drop_edge_p=0.08,
            diagonal_p=0.1,
            sky=(_c("#a7c4d6"), _c("#e4eef2")),
            ground=_c("#7a7f80"),
            road=_c("#38393b"),
            road_mark=_c("#e8c547"),
            buildings=(_c("#d4d9de"), _c("#9fb0bf"), _c("#e8e1d3"), _c("#7f8c99")),
            window=_c("#3b6e8f"),
            roof="tower",
            height_range=(0.7, 0.95),
            sign_bg=_c("#e60012"),
            sign_fg=_c("#ffe600"),
            sign_shape="banner",
            extra="none",
            words=_words(
                "Nathan, Wan Chai, Mong Kok, Sheung, Causeway, Jordan, Temple, Lockhart, "
                "Hennessy, Queen, Des Voeux, Kowloon, Tai Kok, Lai Chi"
            ),
            street_format="{w} Road",
        ),
        CityStyle(
            name="melbourne",
            display_name="Melbourne",
            center=(-37.815, 144.96),
            rows=7,
            cols=7,
            block_m=(100.0, 100.0),
            rotation_deg=20.0,
            jitter=0.04,
            drop_edge_p=0.04,
            diagonal_p=0.1,
            sky=(_c("#5c9be0"), _c("#bcd9f2")),
            ground=_c("#7f9a5a"),
            road=_c("#4a4a4a"),
            road_mark=_c("#ffffff"),
            buildings=(_c("#c9c2b8"), _c("#8a9aa6"), _c("#d4b48c"), _c("#a4705a")),
            window=_c("#d6eaf8"),
            roof="flat",
            height_range=(0.4, 0.7),
            sign_bg=_c("#00843d"),
            sign_fg=_c("#ffffff"),
            sign_shape="round",
            extra="trees",
            words=_words(
                "Collins, Flinders, Swanston, Bourke, Lonsdale, Elizabeth, Spencer, Exhibition, "
                "Russell, Queen, William, Degraves, Hardware, Howey"
            ),
            street_format="{w} Street",
        ),
        CityStyle(
            name="lagos",
            display_name="Lagos",
            center=(6.45, 3.4),
            rows=7,
            cols=7,
            block_m=(85.0, 90.0),
            rotation_deg=0.0,
            jitter=0.16,
            drop_edge_p=0.12,
            diagonal_p=0.1,
            sky=(_c("#f2c572"), _c("#fbe8c4")),
            ground=_c("#b5793f"),
            road=_c("#6b5540"),
            road_mark=_c("#f2f2f2"),
            buildings=(_c("#e8d36a"), _c("#6fb07f"), _c("#e48b63"), _c("#f0f0e6")),
            window=_c("#2e4a3f"),
            roof="flat",
            height_range=(0.2, 0.4),
            sign_bg=_c("#008751"),
            sign_fg=_c("#ffffff"),
            sign_shape="banner",
            extra="palms",
            words=_words(
                "Adeola, Awolowo, Ikoyi, Balogun, Broad, Marina, Akin, Ozumba, Adetokunbo, "
                "Bishop, Kingsway, Obalende, Tinubu, Yaba"
            ),
            street_format="{w} Avenue",
        ),
        CityStyle(
            name="san_francisco",
            display_name="San Francisco",
            center=(37.78, -122.42),
            rows=7,
            cols=7,
            block_m=(90.0, 110.0),
            rotation_deg=8.0,
            jitter=0.06,
            drop_edge_p=0.06,
            diagonal_p=0.2,
            sky=(_c("#c8d3db"), _c("#eef2f4")),
            ground=_c("#8f9c88"),
            road=_c("#4b4b4b"),
            road_mark=_c("#ffffff"),
            buildings=(_c("#f4d6c2"), _c("#c7e0d8"), _c("#f2ecd0"), _c("#d9c4e0")),
            window=_c("#4c6a8a"),
            roof="pitched",
            height_range=(0.3, 0.5),
            sign_bg=_c("#f58025"),
            sign_fg=_c("#202020"),
            sign_shape="round",
            extra="hills",
            words=_words(
                "Valencia, Mission, Castro, Haight, Divisadero, Fillmore, Geary, Hayes, Guerrero, "
                "Dolores, Noe, Church, Sanchez, Market"
            ),
            street_format="{w} Street",
        ),
    )
}
"""Every city's style by name (keys match config.CITY_NAMES)."""


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def street_name(style: CityStyle, index: int, avenue: bool) -> str:
    """Name of the index-th street (east-west) or avenue (north-south) of a city."""
    word = style.words[index % len(style.words)]
    if avenue:
        return f"{ordinal(index + 1)} Avenue" if style.name == "new_york" else f"{word} Lane"
    return style.street_format.format(w=word, n=ordinal(index + 10))
