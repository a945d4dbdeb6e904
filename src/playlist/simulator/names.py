"""Word lists and generators for readable, distinct artist names, track titles and album titles.

Name words avoid every genre, mood, era and negation word the retriever parses, so a name in a
request is never mistaken for a constraint.
"""

from __future__ import annotations

import random

# fmt: off
FIRST = (
    "Mara", "Jonah", "Elsie", "Theo", "Ines", "Callum", "Nadia", "Ruben", "Lena", "Otis", "Priya", "Silas",
    "Greta", "Mateo", "Ada", "Felix", "Juno", "Marcus", "Wren", "Tobias", "Iris", "Dario", "Hazel", "Emil",
    "Noor", "Cass", "Aurelio", "Frida", "Kofi", "Linnea", "Rafael", "Saoirse", "Yusuf", "Vera", "Idris",
    "Maeve", "Oskar", "Talia", "Bruno", "Esme",
)
LAST = (
    "Lindqvist", "Okafor", "Marlowe", "Castellanos", "Whitaker", "Brennan", "Vasquez", "Holloway",
    "Achterberg", "Delacroix", "Sato", "Abernathy", "Kowalski", "Moreau", "Fairweather", "Quinlan", "Ashby",
    "Ferreira", "Haldane", "Novak", "Ellery", "Rourke", "Valdez", "Sinclair", "Thorne", "Calloway",
    "Ibarra", "Lachance", "Pemberton", "Osei", "Rasmussen", "Devereux", "Greaves", "Kinsella", "Montoya",
    "Strand", "Winslow", "Yilmaz", "Zeller", "Halvorsen",
)
BAND_ADJ = (
    "Velvet", "Paper", "Golden", "Hollow", "Silver", "Crooked", "Wild", "Wandering", "Painted", "Restless",
    "Burning", "Midnight", "Copper", "Distant", "Crimson", "Neon", "Lonesome", "Glass", "Secret", "Little",
    "Bright", "Iron", "Honey", "Lucky", "Starlit", "Amber", "Marble", "Frozen", "Ragged", "Violet",
)
BAND_PLURAL = (
    "Moths", "Foxes", "Harbors", "Lanterns", "Sparrows", "Engines", "Tides", "Ghosts", "Rivers", "Orchards",
    "Kites", "Satellites", "Wolves", "Pilots", "Magnets", "Comets", "Daughters", "Strangers", "Architects",
    "Owls", "Ravens", "Bells", "Arrows", "Mirrors", "Gardens", "Heralds",
)
BAND_NOUN = (
    "Harbor", "Lantern", "Meadow", "Signal", "Canyon", "Atlas", "Ember", "Parade", "Horizon", "Compass",
    "Orchard", "Cathedral", "Prism", "Lighthouse", "Archive", "Bonfire", "Current", "Delta", "Glacier",
    "Monsoon",
)
TITLE_ADJ = (
    "Blue", "Slow", "Summer", "Endless", "Paper", "Golden", "Broken", "Sweet", "Lonely", "Silver", "Last",
    "Falling", "Empty", "Open", "Secret", "Holy", "Distant", "Tender", "Bitter", "Wild", "Midnight",
    "Northern", "Burning", "Hidden", "Faded", "Crystal", "Restless", "Sleepless", "Electric",
)
TITLE_NOUN = (
    "Light", "River", "Heart", "Road", "Night", "Rain", "Fire", "Window", "Highway", "Dream", "Letter",
    "Garden", "Ocean", "Mountain", "Shadow", "Morning", "Moon", "Song", "Train", "Harbor", "Silence",
    "Stranger", "Season", "Winter", "Echo", "Mirror", "Horizon", "Promise", "Avenue", "Lullaby", "Skyline",
    "Thunder", "Feather", "Compass", "Lantern", "Satellite", "Wildfire", "Valentine", "Tide", "Meadow",
)
TITLE_VERB = (
    "Dancing", "Running", "Waiting", "Falling", "Dreaming", "Driving", "Waking", "Drifting", "Chasing",
    "Calling", "Holding", "Leaving",
)
TITLE_PREP = (
    "in", "on", "under", "through", "across", "into", "after", "before", "beyond",
)
ENSEMBLE = ("Trio", "Quartet", "Ensemble", "Orchestra")
# fmt: on


def artist_name(rng: random.Random, genre: str) -> str:
    """One artist or band name; classical and jazz acts are sometimes ensembles."""
    if genre in ("classical", "jazz") and rng.random() < 0.35:
        return f"The {rng.choice(LAST)} {rng.choice(ENSEMBLE)}"
    pattern = rng.random()
    if pattern < 0.4:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if pattern < 0.7:
        return f"The {rng.choice(BAND_ADJ)} {rng.choice(BAND_PLURAL)}"
    if pattern < 0.85:
        return f"{rng.choice(BAND_ADJ)} {rng.choice(BAND_NOUN)}"
    return f"{rng.choice(FIRST)} and the {rng.choice(BAND_PLURAL)}"


def distinct_artist_names(rng: random.Random, genres: list[str]) -> list[str]:
    """One distinct name per entry of ``genres`` (the genre of each artist)."""
    names: list[str] = []
    seen: set[str] = set()
    for genre in genres:
        name = artist_name(rng, genre)
        while name in seen:
            name = artist_name(rng, genre)
        seen.add(name)
        names.append(name)
    return names


def title(rng: random.Random) -> str:
    """One track or album title."""
    pattern = rng.random()
    if pattern < 0.4:
        return f"{rng.choice(TITLE_ADJ)} {rng.choice(TITLE_NOUN)}"
    if pattern < 0.6:
        return f"{rng.choice(TITLE_VERB)} {rng.choice(TITLE_PREP)} the {rng.choice(TITLE_NOUN)}"
    if pattern < 0.75:
        return f"{rng.choice(TITLE_NOUN)} of the {rng.choice(TITLE_NOUN)}"
    if pattern < 0.9:
        return rng.choice(TITLE_NOUN)
    return f"{rng.choice(TITLE_ADJ)} {rng.choice(TITLE_NOUN)} {rng.choice(TITLE_NOUN)}"


def distinct_titles(rng: random.Random, n: int) -> list[str]:
    """``n`` titles, distinct from each other (one artist never repeats a title)."""
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n):
        t = title(rng)
        for _retry in range(20):
            if t not in seen:
                break
            t = title(rng)
        part = 2
        while t in seen:
            t, part = f"{t.split(' (Part')[0]} (Part {part})", part + 1
        seen.add(t)
        out.append(t)
    return out
