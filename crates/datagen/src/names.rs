//! Word lists the synthetic data is drawn from. Changing any list changes
//! the generated data (the determinism tests will say so).

pub const FIRST_NAMES: &[&str] = &[
    "Ava", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Henry", "Isla", "Jack", "Kira",
    "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
    "Will", "Xena", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Dmitri", "Elena", "Farah",
    "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mateo", "Nina", "Omar", "Priya", "Ravi",
    "Sofia", "Tomas", "Uma", "Viktor", "Wen", "Yara", "Zain",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
];

pub const EMAIL_DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "inbox.example",
];

/// Segment and its weight in percent.
pub const SEGMENTS: &[(&str, u32)] = &[
    ("consumer", 70),
    ("small_business", 20),
    ("corporate", 8),
    ("vip", 2),
];

pub const STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Sunset",
    "River",
    "Highland",
    "Church",
    "Mill",
    "Spring",
    "Walnut",
    "Chestnut",
    "Jackson",
    "Lincoln",
];

pub const STREET_KINDS: &[&str] = &["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Way"];

/// City, state, country, latitude, longitude, postcode prefix.
pub const CITIES: &[(&str, &str, &str, f64, f64, &str)] = &[
    ("New York", "NY", "US", 40.7128, -74.0060, "100"),
    ("Buffalo", "NY", "US", 42.8864, -78.8784, "142"),
    ("Los Angeles", "CA", "US", 34.0522, -118.2437, "900"),
    ("San Francisco", "CA", "US", 37.7749, -122.4194, "941"),
    ("San Diego", "CA", "US", 32.7157, -117.1611, "921"),
    ("Chicago", "IL", "US", 41.8781, -87.6298, "606"),
    ("Houston", "TX", "US", 29.7604, -95.3698, "770"),
    ("Austin", "TX", "US", 30.2672, -97.7431, "787"),
    ("Dallas", "TX", "US", 32.7767, -96.7970, "752"),
    ("Phoenix", "AZ", "US", 33.4484, -112.0740, "850"),
    ("Philadelphia", "PA", "US", 39.9526, -75.1652, "191"),
    ("Pittsburgh", "PA", "US", 40.4406, -79.9959, "152"),
    ("Seattle", "WA", "US", 47.6062, -122.3321, "981"),
    ("Denver", "CO", "US", 39.7392, -104.9903, "802"),
    ("Boston", "MA", "US", 42.3601, -71.0589, "021"),
    ("Atlanta", "GA", "US", 33.7490, -84.3880, "303"),
    ("Miami", "FL", "US", 25.7617, -80.1918, "331"),
    ("Orlando", "FL", "US", 28.5383, -81.3792, "328"),
    ("Portland", "OR", "US", 45.5152, -122.6784, "972"),
    ("Minneapolis", "MN", "US", 44.9778, -93.2650, "554"),
    ("Detroit", "MI", "US", 42.3314, -83.0458, "482"),
    ("Nashville", "TN", "US", 36.1627, -86.7816, "372"),
    ("Toronto", "ON", "CA", 43.6532, -79.3832, "M5V"),
    ("Vancouver", "BC", "CA", 49.2827, -123.1207, "V6B"),
];

pub const CATEGORIES: &[&str] = &[
    "electronics",
    "books",
    "home",
    "garden",
    "toys",
    "sports",
    "beauty",
    "grocery",
    "clothing",
    "shoes",
    "office",
    "automotive",
];

pub const BRANDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Soylent",
    "Cyberdyne",
    "Vandelay",
    "Gringotts",
    "Monarch",
    "Oceanic",
];

pub const ADJECTIVES: &[&str] = &[
    "Classic", "Deluxe", "Compact", "Smart", "Eco", "Ultra", "Pro", "Mini", "Premium", "Travel",
    "Family", "Daily",
];

pub const NOUNS: &[&str] = &[
    "Lamp",
    "Kettle",
    "Backpack",
    "Speaker",
    "Notebook",
    "Chair",
    "Blender",
    "Jacket",
    "Sneaker",
    "Puzzle",
    "Headphones",
    "Mug",
    "Drill",
    "Tent",
    "Watch",
    "Camera",
    "Novel",
    "Shampoo",
    "Coffee",
    "Racket",
];

/// Discounts a promo may give, in whole percent.
pub const DISCOUNTS: &[u32] = &[5, 10, 15, 20, 25, 30, 40, 50];
