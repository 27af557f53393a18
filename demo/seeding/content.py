"""The vocabulary of the demo city: categories, products, merchant kinds and names.

Plain data, no logic. Products are assembled from parts (adjective, variety, item, size)
so that a million rows still give thousands of distinct, searchable titles.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    name: str
    price: float
    # Pack sizes, smallest first; "" for items sold by the piece.
    sizes: tuple[str, ...]
    varieties: tuple[str, ...] = ()
    # When set, replaces the category's adjectives: "Free-Range Sparkling Water" would
    # read as nonsense.
    adjectives: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Category:
    slug: str
    name: str
    adjectives: tuple[str, ...]
    items: tuple[Item, ...]
    blurbs: tuple[str, ...]
    # Regional producers and made-up labels, never real brands.
    producers: tuple[str, ...] = ()


@dataclass(frozen=True)
class MerchantKind:
    key: str
    nouns: tuple[str, ...]
    # A template with a {district} placeholder.
    description: str
    # Relative shop size: a supermarket lists more products than a kiosk.
    size: float
    category_weights: dict[str, int] = field(default_factory=dict)


CATEGORIES: tuple[Category, ...] = (
    Category(
        slug="fruit-vegetables",
        name="Fruit & Vegetables",
        adjectives=("Organic", "Fresh", "Local", "Seasonal", "Regional", "Fairtrade"),
        items=(
            Item("Bananas", 1.69, ("1kg", "6 pcs")),
            Item("Apples", 2.49, ("1kg", "2kg", "6 pcs"), ("Braeburn", "Elstar", "Gala")),
            Item("Cherry Tomatoes", 2.29, ("250g", "500g"), ("Red", "Yellow", "Vine")),
            Item("Carrots", 1.29, ("500g", "1kg")),
            Item("Potatoes", 2.99, ("1kg", "2.5kg"), ("Waxy", "Floury", "Baby")),
            Item("Avocados", 2.79, ("2 pcs", "4 pcs"), ("Hass", "Ready-to-Eat")),
            Item("Strawberries", 3.99, ("250g", "500g")),
            Item("Blueberries", 2.99, ("125g", "250g")),
            Item("Lemons", 1.99, ("500g", "4 pcs")),
            Item("Baby Spinach", 1.99, ("150g", "250g")),
            Item("Red Onions", 1.49, ("500g", "1kg")),
            Item("Cucumber", 0.79, ("",), ("Mini", "Snack")),
            Item("Bell Peppers", 2.49, ("3 pcs", "500g"), ("Red", "Mixed")),
            Item("Mushrooms", 1.99, ("250g", "400g"), ("Brown", "Button", "Oyster")),
            Item("Broccoli", 1.79, ("500g", "")),
            Item("Oranges", 2.99, ("1.5kg", "2kg"), ("Navel", "Blood")),
            Item("Grapes", 2.99, ("500g",), ("Seedless", "Red", "White")),
            Item("Sweet Potatoes", 2.49, ("1kg",)),
        ),
        blurbs=(
            "Picked ripe and delivered within the hour.",
            "Sourced from growers around Brandenburg when in season.",
            "Washed, sorted and packed by hand.",
            "Great for salads, smoothies and snacking.",
        ),
        producers=(
            "Spreewald",
            "Havelland",
            "Werder",
            "Oderbruch",
            "Uckermark",
            "Fläming",
            "Sunfield",
            "Mediterra",
        ),
    ),
    Category(
        slug="bakery",
        name="Bakery",
        adjectives=("Freshly Baked", "Artisan", "Organic", "Stone-Baked", "Homemade"),
        items=(
            Item("Sourdough Loaf", 4.20, ("750g", "1kg"), ("Rye", "Wheat", "Spelt")),
            Item("Rye Bread", 3.50, ("500g", "1kg"), ("Dark", "Seeded")),
            Item("Croissants", 2.60, ("2 pcs", "4 pcs"), ("Butter", "Almond", "Chocolate")),
            Item("Pretzels", 1.80, ("2 pcs", "4 pcs"), ("Salted", "Butter")),
            Item("Bagels", 3.49, ("4 pcs",), ("Sesame", "Plain", "Everything")),
            Item("Baguette", 1.90, ("",), ("Classic", "Multigrain")),
            Item("Cinnamon Rolls", 2.80, ("2 pcs", "4 pcs")),
            Item("Bread Rolls", 2.49, ("6 pcs", "10 pcs"), ("Spelt", "Poppy Seed", "Kaiser")),
            Item("Apple Strudel", 3.90, ("Slice", "Whole")),
            Item("Cheesecake", 3.20, ("Slice", "Whole"), ("Berlin", "New York")),
            Item("Focaccia", 3.60, ("",), ("Rosemary", "Olive", "Tomato")),
            Item("Toast Bread", 2.29, ("500g",), ("Wholegrain", "Sandwich")),
        ),
        blurbs=(
            "Baked every morning in the shop's own oven.",
            "Long-fermented dough for flavour and a crisp crust.",
            "Made with flour from a Brandenburg mill.",
            "Best on the day, lovely toasted the next.",
        ),
        producers=(
            "Kiezbäcker",
            "Mühlenhof",
            "Korn & Kruste",
            "Backstube Nord",
            "Sauerteigwerk",
            "Ofenfrisch",
        ),
    ),
    Category(
        slug="dairy-eggs",
        name="Dairy & Eggs",
        adjectives=("Organic", "Farmhouse", "Alpine", "Regional", "Lactose-Free"),
        items=(
            Item("Whole Milk", 1.19, ("1L",), ("Fresh", "Hay")),
            Item("Greek Yogurt", 2.49, ("500g", "1kg"), ("Natural", "Honey", "Strawberry")),
            Item("Eggs", 3.29, ("6 pcs", "10 pcs"), ("Free-Range", "Barn"), ()),
            Item("Butter", 2.79, ("250g",), ("Salted", "Unsalted", "Cultured")),
            Item("Gouda", 2.99, ("200g", "400g"), ("Young", "Medium", "Aged")),
            Item("Mozzarella", 1.29, ("125g", "250g"), ("Buffalo", "Mini")),
            Item("Feta", 2.49, ("200g",)),
            Item("Skyr", 1.99, ("450g",), ("Natural", "Vanilla", "Blueberry")),
            Item("Cream Cheese", 1.59, ("200g",), ("Plain", "Herb")),
            Item("Parmesan", 4.99, ("150g", "250g")),
            Item("Oat Drink", 1.89, ("1L",), ("Barista", "Original"), ("Organic", "Regional")),
            Item("Emmental", 2.69, ("200g",), ("Sliced", "Grated")),
        ),
        blurbs=(
            "From dairies within a day's drive of the city.",
            "Keep refrigerated; delivered in an insulated bag.",
            "Creamy, fresh and properly cold on arrival.",
        ),
        producers=("Weidegold", "Alpenwiese", "Hofmolkerei", "Barnimer", "Kuhglück", "Heuhof"),
    ),
    Category(
        slug="meat-fish",
        name="Meat & Fish",
        adjectives=("Organic", "Free-Range", "Regional", "Premium"),
        items=(
            Item("Chicken Breast", 6.99, ("400g", "1kg")),
            Item("Beef Mince", 5.49, ("500g",)),
            Item("Pork Sausages", 3.99, ("4 pcs", "6 pcs"), ("Herb", "Spicy")),
            Item("Salmon Fillet", 7.99, ("250g", "500g"), (), ("Wild", "Norwegian", "Organic")),
            Item("Smoked Salmon", 3.99, ("100g", "200g"), (), ("Wild", "Norwegian", "Organic")),
            Item("Lamb Chops", 9.99, ("400g",)),
            Item("Turkey Slices", 2.49, ("150g",), ("Smoked", "Roast")),
            Item("Prawns", 6.49, ("200g",), ("King", "Tiger"), ("Wild", "Organic")),
            Item("Bratwurst", 3.49, ("4 pcs",), ("Thuringian", "Nuremberg")),
            Item("Salami", 2.29, ("100g",), ("Milano", "Fennel")),
            Item("Cod Fillet", 6.99, ("300g",), (), ("Wild", "North Sea", "MSC")),
            Item(
                "Steak",
                11.99,
                ("250g", "400g"),
                ("Rump", "Ribeye", "Sirloin"),
                ("Grass-Fed", "Dry-Aged", "Organic"),
            ),
        ),
        blurbs=(
            "Cut to order at the counter.",
            "From farms with high animal-welfare standards.",
            "Keep refrigerated and use within two days.",
        ),
        producers=(
            "Landmetzger",
            "Uckermärker",
            "Weidehof",
            "Prignitzer",
            "Hofgut Barnim",
            "Frischetheke",
        ),
    ),
    Category(
        slug="pantry",
        name="Pantry",
        adjectives=("Organic", "Italian", "Fairtrade", "Wholegrain", "Classic"),
        items=(
            Item("Spaghetti", 1.49, ("500g",), ("Durum Wheat", "Wholewheat")),
            Item("Penne", 1.49, ("500g",), ("Rigate", "Wholewheat")),
            Item("Rice", 2.99, ("1kg",), ("Basmati", "Jasmine", "Risotto")),
            Item("Olive Oil", 6.99, ("500ml", "750ml"), ("Extra Virgin",)),
            Item("Tomato Passata", 1.29, ("500g", "700g")),
            Item("Chickpeas", 0.99, ("400g",)),
            Item("Rolled Oats", 1.79, ("500g", "1kg")),
            Item("Peanut Butter", 3.49, ("350g",), ("Crunchy", "Smooth")),
            Item("Honey", 5.99, ("250g", "500g"), ("Wildflower", "Acacia", "Forest")),
            Item("Lentils", 2.49, ("500g",), ("Red", "Green", "Beluga")),
            Item("Coffee Beans", 9.99, ("500g", "1kg"), ("Espresso", "Filter", "House Blend")),
            Item("Tea", 2.99, ("20 bags",), ("Green", "Earl Grey", "Peppermint", "Chai")),
            Item("Jam", 2.99, ("340g",), ("Strawberry", "Apricot", "Sour Cherry")),
            Item("Muesli", 3.49, ("750g",), ("Fruit", "Nut", "Crunchy")),
            Item("Coconut Milk", 1.79, ("400ml",)),
            Item("Soy Sauce", 2.49, ("250ml",), ("Light", "Dark"), ("Organic", "Classic")),
        ),
        blurbs=(
            "A cupboard staple for quick weeknight dinners.",
            "Store in a cool, dry place.",
            "Imported directly from small producers.",
        ),
        producers=(
            "Casa Verde",
            "Kornkammer",
            "Spice Road",
            "Vollkornwerk",
            "Olivenhain",
            "Imkerei Lindner",
            "Bohnenkult",
        ),
    ),
    Category(
        slug="drinks",
        name="Drinks",
        adjectives=("Organic", "Local", "Chilled"),
        items=(
            Item("Sparkling Water", 0.59, ("1L", "6 x 1L"), ("Mineral",), ("Local", "Chilled")),
            Item("Orange Juice", 2.49, ("1L",), ("Fresh-Pressed", "Not-From-Concentrate")),
            Item("Apple Juice", 1.99, ("1L",), ("Cloudy", "Clear")),
            Item(
                "Lager",
                1.29,
                ("0.5L", "6 x 0.33L"),
                ("Berlin", "Pale", "Helles"),
                ("Craft", "Organic", "Local"),
            ),
            Item("Club-Mate", 1.19, ("0.5L", "20 x 0.5L"), (), ("Chilled",)),
            Item("Cold Brew Coffee", 2.99, ("330ml",), ("Black", "Oat")),
            Item("Kombucha", 2.79, ("330ml",), ("Ginger", "Hibiscus", "Original")),
            Item("Red Wine", 7.99, ("750ml",), ("Merlot", "Rioja", "Primitivo"), ("Organic",)),
            Item(
                "White Wine",
                7.49,
                ("750ml",),
                ("Riesling", "Grauburgunder", "Sauvignon Blanc"),
                ("Organic",),
            ),
            Item("Lemonade", 1.69, ("0.33L", "1L"), ("Elderflower", "Rhubarb", "Lemon")),
            Item("Iced Tea", 1.49, ("0.5L", "1.5L"), ("Peach", "Lemon", "Green")),
            Item("Ginger Beer", 1.89, ("0.33L",)),
        ),
        blurbs=(
            "Delivered chilled where we can.",
            "Deposit (Pfand) is refunded at any shop.",
            "From breweries and bottlers around Berlin.",
        ),
        producers=(
            "Kiezbrauerei",
            "Havelquelle",
            "Saftladen",
            "Sonnenhang",
            "Brauhaus Nord",
            "Teeträume",
        ),
    ),
    Category(
        slug="snacks-sweets",
        name="Snacks & Sweets",
        adjectives=("Organic", "Vegan", "Fairtrade", "Classic"),
        items=(
            Item("Dark Chocolate", 2.29, ("100g",), ("70%", "Sea Salt", "Orange", "Mint")),
            Item("Milk Chocolate", 1.99, ("100g",), ("Hazelnut", "Caramel", "Whole Almond")),
            Item("Potato Crisps", 1.99, ("150g",), ("Sea Salt", "Paprika", "Salt & Vinegar")),
            Item("Tortilla Chips", 1.79, ("200g",), ("Chili", "Lightly Salted")),
            Item("Gummy Bears", 1.29, ("200g",), ("Fruit", "Sour")),
            Item("Roasted Peanuts", 1.69, ("200g",), ("Salted", "Honey")),
            Item("Trail Mix", 3.49, ("200g",), ("Student", "Tropical")),
            Item("Butter Cookies", 2.49, ("200g",), ("Classic", "Chocolate Chip")),
            Item("Rice Cakes", 1.29, ("100g",), ("Sea Salt", "Dark Chocolate")),
            Item("Protein Bar", 1.99, ("60g",), ("Peanut", "Cookie", "Berry")),
            Item("Popcorn", 1.49, ("100g",), ("Sweet", "Salted")),
            Item("Marzipan Bar", 1.79, ("100g",)),
        ),
        blurbs=(
            "For movie nights and long afternoons.",
            "A small treat, delivered fast.",
            "Share it, or don't.",
        ),
        producers=("Knusperwerk", "Naschkatze", "Kakaowerk", "Nussbaum", "Berliner Süß"),
    ),
    Category(
        slug="frozen",
        name="Frozen",
        adjectives=("Organic", "Classic", "Premium", "Family-Size"),
        items=(
            Item("Pizza", 3.49, ("350g",), ("Margherita", "Salami", "Spinach"), ("Stone-Baked",)),
            Item("Ice Cream", 4.49, ("500ml",), ("Vanilla", "Chocolate", "Pistachio")),
            Item("Garden Peas", 1.79, ("750g",)),
            Item("Fish Fingers", 3.29, ("15 pcs",)),
            Item("Leaf Spinach", 1.49, ("450g",)),
            Item("Berry Mix", 3.99, ("500g",), ("Forest", "Smoothie")),
            Item("Dumplings", 4.99, ("500g",), ("Vegetable", "Pork", "Chicken")),
            Item("French Fries", 2.49, ("750g", "1kg"), ("Crinkle-Cut", "Classic")),
            Item("Veggie Burgers", 3.99, ("2 pcs", "4 pcs")),
            Item("Mango Chunks", 2.99, ("400g",)),
        ),
        blurbs=(
            "Keep frozen at -18 °C; delivered in an insulated bag.",
            "Dinner in fifteen minutes.",
        ),
        producers=("Frostfein", "Eiszeit", "Polarhof", "Kühlkiste"),
    ),
    Category(
        slug="household",
        name="Household",
        adjectives=("Eco", "Value Pack", "Premium"),
        items=(
            Item("Dish Soap", 1.99, ("500ml",), ("Lemon", "Green Tea")),
            Item("Laundry Detergent", 7.99, ("1.5L", "20 loads"), ("Colour", "Universal")),
            Item("Toilet Paper", 3.99, ("8 rolls", "16 rolls"), ("Recycled", "3-Ply")),
            Item("Kitchen Towels", 2.49, ("4 rolls",)),
            Item("Bin Bags", 2.29, ("20 pcs",), ("35L", "60L")),
            Item("All-Purpose Cleaner", 2.49, ("750ml",), ("Citrus", "Vinegar")),
            Item("Sponges", 1.49, ("5 pcs",)),
            Item("Dishwasher Tabs", 5.99, ("40 pcs",), ("All-in-One", "Classic")),
            Item("Tea Lights", 2.99, ("50 pcs",), (), ("Unscented", "Eco")),
            Item("LED Bulb", 3.99, ("E27", "E14"), ("Warm White", "Daylight"), ()),
        ),
        blurbs=(
            "Everything for a clean flat.",
            "Refill packs where available, to save plastic.",
        ),
        producers=("Klarwerk", "Frischwerk", "Sauberkiez", "Ecoloop"),
    ),
    Category(
        slug="health-beauty",
        name="Health & Beauty",
        adjectives=("Natural", "Sensitive", "Vegan", "Herbal", "Organic"),
        items=(
            Item("Shampoo", 3.49, ("250ml",), ("Repair", "Volume", "Anti-Dandruff")),
            Item("Shower Gel", 1.99, ("250ml",), ("Citrus", "Sea Minerals", "Lavender")),
            Item("Toothpaste", 1.79, ("75ml",), ("Whitening", "Mint", "Sensitive")),
            Item("Hand Cream", 2.99, ("75ml",), ("Shea", "Almond")),
            Item("Sunscreen", 7.99, ("200ml",), ("SPF 30", "SPF 50")),
            Item("Deodorant", 2.49, ("50ml", "150ml"), ("Roll-On", "Spray")),
            Item("Vitamin C Tablets", 4.99, ("60 pcs",), ("Effervescent", "Chewable")),
            Item("Lip Balm", 1.99, ("4.8g",), ("Honey", "Classic")),
            Item("Face Wash", 4.49, ("150ml",), ("Gentle", "Clarifying")),
            Item("Plasters", 2.49, ("20 pcs",), ("Waterproof", "Fabric"), ()),
            Item("Cotton Pads", 1.29, ("80 pcs",)),
        ),
        blurbs=(
            "Dermatologically tested.",
            "No microplastics, no fuss.",
            "Everyday care from the drugstore shelf.",
        ),
        producers=("Sanftig", "Purea", "Hautnah", "Kräuterwerk", "Blütezeit"),
    ),
    Category(
        slug="baby-kids",
        name="Baby & Kids",
        adjectives=("Organic", "Gentle", "Sensitive", "Natural"),
        items=(
            Item("Baby Wipes", 1.99, ("80 pcs", "3 x 80 pcs")),
            Item("Nappies", 9.99, ("Size 3", "Size 4", "Size 5"), (), ("Eco", "Sensitive")),
            Item("Fruit Puree", 0.99, ("100g",), ("Apple", "Pear Banana", "Mango")),
            Item("Baby Porridge", 2.49, ("250g",), ("Oat", "Millet", "Spelt")),
            Item("Kids' Toothpaste", 1.49, ("50ml",), ("Strawberry", "Mild Mint")),
            Item("Rice Rusks", 1.79, ("100g",)),
            Item("Baby Shampoo", 2.99, ("200ml",)),
            Item("Teething Biscuits", 2.29, ("120g",)),
        ),
        blurbs=(
            "Suitable from six months unless noted.",
            "Made without added sugar or salt.",
        ),
        producers=("Kleiner Bär", "Sonnenkind", "Wiegenlied", "Krümel"),
    ),
    Category(
        slug="pet-supplies",
        name="Pet Supplies",
        adjectives=("Grain-Free", "Natural", "Premium", "Organic"),
        items=(
            Item("Dry Dog Food", 12.99, ("2kg", "4kg"), ("Adult", "Puppy", "Senior")),
            Item("Cat Food Pouches", 4.99, ("12 x 85g",), ("Chicken", "Salmon", "Beef")),
            Item("Cat Litter", 6.99, ("10L",), ("Clumping", "Wood"), ("Natural", "Eco")),
            Item("Dog Treats", 2.99, ("200g",), ("Chicken", "Lamb")),
            Item("Chew Sticks", 3.49, ("7 pcs",), ("Dental",)),
            Item("Bird Seed", 3.49, ("1kg",), ("Wild Bird", "Budgie")),
            Item("Catnip Toy", 3.99, ("",), ("Mouse", "Fish"), ("Natural",)),
            Item("Poop Bags", 2.49, ("120 pcs",), (), ("Compostable", "Eco")),
        ),
        blurbs=(
            "Vet-approved recipes.",
            "For happy pets across the city.",
        ),
        producers=("Pfotenglück", "Schnurrli", "Wildfang", "Bello & Co."),
    ),
)


MERCHANT_KINDS: tuple[tuple[MerchantKind, int], ...] = (
    (
        MerchantKind(
            key="supermarket",
            nouns=("Market", "Supermarket", "Fresh Market", "Food Hall"),
            description="Full-range neighbourhood supermarket in {district}.",
            size=2.5,
            category_weights={
                "fruit-vegetables": 16,
                "bakery": 8,
                "dairy-eggs": 14,
                "meat-fish": 9,
                "pantry": 18,
                "drinks": 12,
                "snacks-sweets": 9,
                "frozen": 7,
                "household": 5,
                "health-beauty": 3,
                "baby-kids": 2,
                "pet-supplies": 2,
            },
        ),
        3,
    ),
    (
        MerchantKind(
            key="organic",
            nouns=("Organic Market", "Bio Market", "Wholefoods"),
            description="Organic grocer in {district} with produce from the region.",
            size=1.6,
            category_weights={
                "fruit-vegetables": 30,
                "dairy-eggs": 18,
                "bakery": 12,
                "pantry": 25,
                "drinks": 10,
                "health-beauty": 5,
            },
        ),
        2,
    ),
    (
        MerchantKind(
            key="bakery",
            nouns=("Bakery", "Bakehouse", "Bread & Co."),
            description="Neighbourhood bakery in {district}, sourdough baked daily.",
            size=0.5,
            category_weights={"bakery": 75, "dairy-eggs": 8, "drinks": 10, "snacks-sweets": 7},
        ),
        3,
    ),
    (
        MerchantKind(
            key="butcher",
            nouns=("Butchery", "Meat & Deli", "Fish & Meat"),
            description="Butcher and fishmonger in {district} with a deli counter.",
            size=0.6,
            category_weights={"meat-fish": 80, "pantry": 10, "frozen": 10},
        ),
        1,
    ),
    (
        MerchantKind(
            key="greengrocer",
            nouns=("Greengrocer", "Fruit & Veg", "Produce"),
            description="Greengrocer in {district} with seasonal fruit and vegetables.",
            size=0.6,
            category_weights={"fruit-vegetables": 85, "pantry": 10, "drinks": 5},
        ),
        2,
    ),
    (
        MerchantKind(
            key="deli",
            nouns=("Deli", "Delicatessen", "Feinkost"),
            description="{district} delicatessen: cheese, charcuterie and fine pantry goods.",
            size=0.8,
            category_weights={"pantry": 35, "dairy-eggs": 25, "meat-fish": 20, "drinks": 20},
        ),
        2,
    ),
    (
        MerchantKind(
            key="spaeti",
            nouns=("Späti", "Kiosk", "Corner Shop"),
            description="Late-night corner shop in {district}, open until 2am.",
            size=0.6,
            category_weights={
                "drinks": 50,
                "snacks-sweets": 35,
                "household": 10,
                "health-beauty": 5,
            },
        ),
        3,
    ),
    (
        MerchantKind(
            key="drugstore",
            nouns=("Drugstore", "Drogerie", "Care Shop"),
            description="Drugstore in {district} for personal care, household and baby needs.",
            size=1.2,
            category_weights={"health-beauty": 55, "household": 25, "baby-kids": 20},
        ),
        2,
    ),
    (
        MerchantKind(
            key="pets",
            nouns=("Pet Shop", "Pet Supplies", "Paws & Co."),
            description="Food and care for the dogs, cats and birds of {district}.",
            size=0.7,
            category_weights={"pet-supplies": 100},
        ),
        1,
    ),
    (
        MerchantKind(
            key="beverages",
            nouns=("Drinks Market", "Getränke", "Bottle Shop"),
            description="Drinks store in {district} with crates, wine and craft beer.",
            size=0.7,
            category_weights={"drinks": 90, "snacks-sweets": 10},
        ),
        1,
    ),
    (
        MerchantKind(
            key="asian",
            nouns=("Asia Market", "Asian Grocery", "Oriental Store"),
            description="Asian grocery in {district} with noodles, sauces and frozen dumplings.",
            size=1.0,
            category_weights={"pantry": 50, "frozen": 25, "drinks": 15, "snacks-sweets": 10},
        ),
        1,
    ),
)

# Berlin flavour for names and addresses; the seed's centre may be anywhere.
DISTRICTS = (
    "Mitte",
    "Kreuzberg",
    "Neukölln",
    "Friedrichshain",
    "Prenzlauer Berg",
    "Wedding",
    "Moabit",
    "Schöneberg",
    "Charlottenburg",
    "Pankow",
    "Treptow",
    "Lichtenberg",
    "Tempelhof",
    "Steglitz",
    "Wilmersdorf",
    "Spandau",
    "Köpenick",
    "Weißensee",
)

NAME_ADJECTIVES = (
    "Green",
    "Golden",
    "Little",
    "Corner",
    "Daily",
    "Happy",
    "Urban",
    "Sunny",
    "Honest",
    "Good",
    "Blue Door",
    "Red Brick",
)

FIRST_NAMES = (
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elif",
    "Finn",
    "Greta",
    "Hannah",
    "Ibrahim",
    "Jonas",
    "Katarzyna",
    "Lea",
    "Mehmet",
    "Nina",
    "Oskar",
    "Paula",
    "Quang",
    "Rosa",
    "Sofia",
    "Tobias",
    "Ula",
    "Viktor",
    "Wiebke",
    "Yusuf",
    "Zoe",
)

LAST_NAMES = (
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Yılmaz",  # noqa: RUF001 - the Turkish dotless i is the spelling
    "Kaya",
    "Nowak",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Novak",
    "Hansen",
    "Braun",
    "Zimmermann",
    "Krüger",
    "Hartmann",
    "Lange",
)

STREETS = (
    "Torstraße",
    "Kastanienallee",
    "Schönhauser Allee",
    "Sonnenallee",
    "Karl-Marx-Straße",
    "Bergmannstraße",
    "Oranienstraße",
    "Kantstraße",
    "Warschauer Straße",
    "Boxhagener Straße",
    "Invalidenstraße",
    "Müllerstraße",
    "Turmstraße",
    "Hauptstraße",
    "Schlossstraße",
    "Frankfurter Allee",
    "Greifswalder Straße",
    "Danziger Straße",
    "Weserstraße",
    "Wiener Straße",
    "Kollwitzstraße",
    "Bötzowstraße",
    "Gneisenaustraße",
    "Yorckstraße",
    "Potsdamer Straße",
    "Wilmersdorfer Straße",
    "Berliner Straße",
    "Bahnhofstraße",
    "Lindenstraße",
    "Gartenstraße",
)

# Second address lines of delivery addresses; {n} is a small number.
ADDRESS_EXTRAS = (
    "Apt {n}",
    "Floor {n}, left",
    "Floor {n}, right",
    "Rear building, floor {n}",
    "Side entrance, floor {n}",
    "Office {n}",
)

# Why orders were cancelled: by the customer while confirmed, by the shop while preparing.
CUSTOMER_CANCEL_REASONS = (
    "Ordered by mistake",
    "Changed my mind",
    "Wrong delivery address",
    "Found it elsewhere",
    "Taking too long",
)
MERCHANT_CANCEL_REASONS = (
    "Item damaged while packing",
    "Closing early today",
    "Could not complete the order",
    "No courier available",
    "Product recalled by the supplier",
)
