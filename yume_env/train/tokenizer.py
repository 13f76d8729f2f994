"""The tiny preset's tokenizer: its training text (the Yume action captions plus plain English world
events) and the builder that writes ``yume_env/assets/tiny_tokenizer``.

The byte-pair-encoding machinery is the model layer's (:func:`yume_env.model.text_encoder.build_bpe_tokenizer`);
what it is trained on is the action vocabulary (:mod:`yume_env.actions`), which lives up here.
Rebuilding gives the shipped files byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from yume_env.actions import LOOK_PHRASES, LOOKS, MOVE_PHRASES, MOVES
from yume_env.model.text_encoder import TINY_TOKENIZER_MAX_VOCAB, build_bpe_tokenizer

__all__ = ["build_tiny_tokenizer", "tiny_tokenizer_corpus"]


def _phrase_lines() -> list[str]:
    """The Yume action captions: both caption styles, the speed fields and full 1.5-style captions."""
    prefix = "First-person perspective."
    speed = (
        "Actual distance moved:{d} at 100 meters per second. Angular change rate (turn speed):{a}. "
        "View rotation speed:{r}."
    )
    lines = [prefix, *MOVE_PHRASES.values(), *LOOK_PHRASES.values()]
    for d, a, r in ((4, 0, 0), (0, 4, 4), (4, 4, 4), (1, 2, 3), (0.5, 7, 10), (2.5, 0.1, 9), (6, 8, 5)):
        lines.append(speed.format(d=d, a=a, r=r))
    for i, move in enumerate(MOVES):  # one full caption per movement, in both joining styles
        look = LOOKS[(2 * i) % len(LOOKS)]
        s = speed.format(d=i % 10, a=(i * 3) % 10, r=(i * 7) % 10)
        lines.append(f"{prefix}{MOVE_PHRASES[move]}{LOOK_PHRASES[look]}{s}")
        lines.append(f"{prefix} {MOVE_PHRASES[move]} {LOOK_PHRASES[look]}")
    old_style = (
        "This video depicts a city walk scene with a first-person view (FPV).",
        "Person moves forward (W). Person moves left (A). Person moves backward (S). Person moves right (D).",
        "Person moves forward and left (W+A). Person moves forward and right (W+D).",
        "Person moves backward and right (S+D). Person moves backward and left (S+A). Person stands still (·).",
        "Camera turns right (→). Camera turns left (←). Camera tilts up (↑). Camera tilts down (↓).",
        "Camera tilts up and turns right (↑→). Camera tilts up and turns left (↑←).",
        "Camera tilts down and turns right (↓→). Camera tilts down and turns left (↓←). Camera remains still (·).",
    )
    lines.extend(old_style)
    return lines


_EVENT_LINES = """\
A sudden thunderstorm rolls in and heavy rain begins to fall on the street.
Snow starts falling softly, covering the road and the rooftops in white.
Thick fog drifts in from the river, and the buildings fade into gray shapes.
The sun sets behind the mountains and the sky turns orange, pink and purple.
Night falls over the city; street lamps flicker on one by one.
A red sports car speeds past on the left and disappears around the corner.
A yellow school bus stops at the crosswalk and children climb aboard.
A flock of white birds takes off from the square and circles the tower.
A large brown dog runs across the park, chasing a blue ball.
A black cat jumps onto a wooden fence and watches the camera.
A fire-breathing dragon lands on the bridge ahead, its wings spread wide.
Fireworks explode above the harbor in bursts of gold, green and red.
An old man in a gray coat walks slowly along the sidewalk with a cane.
A woman on a bicycle rings her bell and rides past the fountain.
A crowd gathers in the market square to watch a street musician play the violin.
Lightning strikes a tall tree in the distance and thunder echoes across the valley.
The wind picks up, and dry leaves swirl across the empty parking lot.
A rainbow appears over the lake after the rain stops.
The morning sun rises over the hills, casting long shadows across the field.
At noon the streets are bright and crowded with tourists and shoppers.
A police car with flashing blue lights drives past, its siren wailing.
A delivery truck backs into the alley and two workers unload boxes.
A hot air balloon floats slowly over the rooftops.
A helicopter flies low over the river, its rotor blades thumping.
A train crosses the bridge, its windows glowing in the evening light.
A small boat drifts along the canal under a stone bridge.
Cherry blossoms fall like pink snow along the quiet lane.
A giant robot steps out from behind the skyscraper.
A wooden crate falls from a truck and breaks open on the road.
Three horses gallop across the meadow toward the forest.
A deer appears at the edge of the forest and freezes, ears raised.
The street lights go out, and the city is suddenly dark.
Neon signs glow in red, blue and purple along the narrow alley.
A sandstorm sweeps across the desert road, hiding the horizon.
Waves crash against the rocks and sea spray fills the air.
A volcano erupts in the distance, sending ash and smoke into the sky.
The ground shakes as an earthquake rattles the windows of the shops.
A meteor streaks across the night sky and vanishes behind the hills.
The full moon rises above the lake, silver and bright.
Stars fill the sky over the quiet village.
A marching band parades down the main street, drums beating.
Children fly colorful kites on the grassy hill.
A man sells hot coffee and bread from a small cart on the corner.
A giant wave rolls toward the beach.
The river freezes over and people begin to skate on the ice.
A dense forest of tall pine trees surrounds the path.
The door of the old house creaks open by itself.
A lantern glows in the window of the cabin.
An airplane passes overhead, leaving a long white trail.
A dinosaur walks out of the jungle and roars.
Two dogs play tug of war with a rope on the lawn.
A squirrel runs up the trunk of an oak tree.
Pigeons scatter as a child runs through the plaza.
The traffic light turns green and the cars start moving.
A bus pulls away from the stop, leaving a cloud of dust.
Rain turns to hail, bouncing off the hoods of parked cars.
The clouds part and warm sunlight floods the street.
It is 7:30 in the morning and the shops are opening.
The clock on the tower strikes 12 times at midnight.
There are 5 boats, 12 ducks and 3 swans on the pond.
Temperature drops to -10 degrees; frost covers the windows.
The sign reads "STOP" in big white letters.
"Look out!" someone shouts as a cart rolls down the hill.
Is that a ghost floating over the graveyard? It glows pale blue.
A purple portal opens in the middle of the road [glowing] and humming.
Smoke rises from a chimney {slowly}; the smell of bread fills the air.
Prices on the board: apples $2, pears $3, and 50% off on melons.
Email the office at info@example.com or call 555-0199 before 9 p.m.
Path: /home/user/data_01.txt ~ version 2.0 & final #1 * note ^ top | end < start > middle
A flag waves in the wind at the top of the castle.
The castle gate opens and knights ride out on white horses.
A spaceship descends slowly and lands in the field.
The snowman in the yard begins to melt in the sun.
Autumn leaves in red and gold cover the forest floor.
Spring flowers bloom along the riverbank.
In summer the beach is full of people, umbrellas and sand castles.
In winter the mountains are covered with deep snow.
A cyclist in a green jacket races down the steep hill.
A taxi honks twice and pulls over to the curb.
A group of runners jogs past along the river path.
A street vendor grills corn on a small charcoal stove.
The bakery window is full of cakes, cookies and pies.
An ambulance rushes through the intersection.
A farmer drives a tractor across the muddy field.
Cows graze quietly in the green pasture.
A fox crosses the snowy road and vanishes into the trees.
Wolves howl somewhere in the dark forest.
A bear climbs out of the river holding a fish.
A rabbit hops across the garden path.
Ducks swim in a line across the pond.
A horse-drawn carriage rolls slowly over the cobblestones.
A motorcycle roars past with its headlight on.
A ship sounds its horn as it leaves the port.
Sparks fly as a welder works on a steel beam.
The glass window shatters into many pieces.
A wall of the old building collapses in a cloud of dust.
Flames burst from the roof of the warehouse; firefighters arrive.
Water floods the street after a pipe bursts.
The power goes out and the whole block goes dark.
A spotlight sweeps across the sky.
A giant statue comes to life and begins to walk.
Golden light shines through the stained glass windows.
A soft breeze moves the curtains.
The shadows grow longer as the afternoon passes.
Dawn breaks and birds begin to sing.
Dusk settles over the town, and the sky turns deep blue.
It is midnight; the streets are empty and silent.
Everything is calm again.
"""


def _generated_event_lines() -> list[str]:
    """Template sentences crossing colours, things, places, numbers, weather and times of day."""
    colours = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black", "gray", "brown",
               "golden", "silver", "dark", "bright"]  # fmt: skip
    things = ["car", "truck", "bus", "bicycle", "motorcycle", "boat", "balloon", "kite", "box", "barrel",
              "lamp", "umbrella", "tent", "train", "drone", "robot", "bird", "dog", "cat", "horse"]  # fmt: skip
    verbs = ["appears", "moves slowly", "passes by", "stops", "turns around", "falls", "rises", "spins",
             "glows", "disappears", "crashes", "floats", "rolls", "lands", "flies away"]  # fmt: skip
    places = ["on the road", "near the bridge", "in the sky", "behind the building", "in front of the camera",
              "on the left", "on the right", "beside the river", "at the corner", "over the trees",
              "in the distance", "across the square", "under the tree", "inside the tunnel", "on the hill"]  # fmt: skip
    numbers = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve", "twenty", "thirty", "fifty", "a hundred", "a thousand"]  # fmt: skip
    crowds = ["people", "children", "soldiers", "tourists", "dancers", "birds", "cars", "horses", "sheep",
              "lanterns", "fish", "butterflies", "bees", "cats", "dogs"]  # fmt: skip
    weather = ["rain", "snow", "fog", "wind", "hail", "mist", "drizzle", "a storm", "a blizzard", "sunshine",
               "thunder", "lightning", "clouds", "smoke", "dust"]  # fmt: skip
    times = ["dawn", "sunrise", "morning", "noon", "afternoon", "sunset", "dusk", "evening", "night",
             "midnight"]  # fmt: skip
    lines: list[str] = []
    for i in range(150):
        c, t, v, p = colours[i % 15], things[(i * 7) % 20], verbs[(i * 11) % 15], places[(i * 4) % 15]
        lines.append(f"A {c} {t} {v} {p}.")
    for i in range(100):
        n, g, p, w = numbers[i % 17], crowds[(i * 3) % 15], places[(i * 2) % 15], weather[(i * 7) % 15]
        tm = times[(i * 3) % 10]
        lines.append(f"At {tm}, {n} {g} gather {p} while {w} begins.")
    for i in range(50):
        w, tm, c = weather[i % 15], times[(i * 7) % 10], colours[(i * 2) % 15]
        lines.append(
            f"The {w} stops at {tm} and the sky turns {c}; it is {i + 1} degrees and {i % 24}:{i % 60:02d}."
        )
    return lines


def tiny_tokenizer_corpus() -> list[str]:
    """The training text of the tiny tokenizer: Yume action captions plus plain English world events."""
    events = [line for line in _EVENT_LINES.splitlines() if line.strip()]
    printable = "".join(chr(c) for c in range(32, 127))
    return _phrase_lines() + events + _generated_event_lines() + [printable, printable[::-1]]


def build_tiny_tokenizer(out_dir: str | Path, vocab_size: int = TINY_TOKENIZER_MAX_VOCAB) -> Path:
    """Train the tiny offline tokenizer on :func:`tiny_tokenizer_corpus` and save it in ``out_dir``.

    The alphabet is printable ASCII plus the camera arrows and the "still" dot of :data:`LOOKS`; see
    :func:`~yume_env.model.text_encoder.build_bpe_tokenizer` for the model and ids. Returns ``out_dir``.
    """
    return build_bpe_tokenizer(out_dir, tiny_tokenizer_corpus(), "".join(LOOKS), vocab_size)
