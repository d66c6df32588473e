"""Relations and facts written for mechscope, each a prompt template with subjects and attributes.

Every relation carries what CounterFact-style requests need besides its facts: two
paraphrase templates and two generation prompts. Facts are ``Subject:Attribute`` pairs
separated by ``;``. Written by hand (common knowledge, not scraped); which of them a model
actually knows is measured by :func:`mechscope.facts.known_facts`, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Relation:
    """One kind of fact, with its prompts."""

    relation_id: str
    """The Wikidata property it corresponds to (as CounterFact names relations)."""
    template: str
    """The prompt, ``{}`` standing for the subject; the attribute comes next."""
    paraphrases: tuple[str, ...]
    """Other wordings of the same question (CounterFact's paraphrase prompts)."""
    generation: tuple[str, ...]
    """Open prompts about the subject, for generation (fluency, consistency)."""
    facts: str
    """``Subject:Attribute`` pairs separated by ``;``."""

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The facts as ``(subject, attribute)`` pairs, in the order written."""
        items = (item.strip() for item in self.facts.split(";"))
        return tuple(tuple(item.split(":")) for item in items if item)  # type: ignore[misc]


RELATIONS: dict[str, Relation] = {
    "city_country": Relation(
        "P17", '{} is a city in the country of',
        ('{} is a city located in', 'The city of {} lies in the country of'),
        ('{} is a city where', 'The streets of {} are'),
        (
            'Paris:France; Lyon:France; Marseille:France; Toulouse:France; Nice:France; Bordeaux:France; '
            'Strasbourg:France; Lille:France; Nantes:France; Berlin:Germany; Munich:Germany; Hamburg:Germany; '
            'Frankfurt:Germany; Cologne:Germany; Stuttgart:Germany; Dresden:Germany; Leipzig:Germany; '
            'Düsseldorf:Germany; Bremen:Germany; Rome:Italy; Milan:Italy; Naples:Italy; Venice:Italy; Florence:Italy; '
            'Turin:Italy; Bologna:Italy; Genoa:Italy; Palermo:Italy; Verona:Italy; Madrid:Spain; Barcelona:Spain; '
            'Seville:Spain; Valencia:Spain; Bilbao:Spain; Granada:Spain; Malaga:Spain; Tokyo:Japan; Osaka:Japan; '
            'Kyoto:Japan; Yokohama:Japan; Hiroshima:Japan; Nagoya:Japan; Sapporo:Japan; Beijing:China; '
            'Shanghai:China; Guangzhou:China; Shenzhen:China; Wuhan:China; Chengdu:China; Moscow:Russia; Saint '
            'Petersburg:Russia; Novosibirsk:Russia; Kazan:Russia; London:England; Manchester:England; '
            'Liverpool:England; Birmingham:England; Leeds:England; Bristol:England; Oxford:England; '
            'Cambridge:England; Toronto:Canada; Vancouver:Canada; Montreal:Canada; Calgary:Canada; Ottawa:Canada; '
            'Edmonton:Canada; Sydney:Australia; Melbourne:Australia; Brisbane:Australia; Perth:Australia; '
            'Adelaide:Australia; Mumbai:India; Delhi:India; Bangalore:India; Kolkata:India; Chennai:India; '
            'Hyderabad:India; Cairo:Egypt; Alexandria:Egypt; Istanbul:Turkey; Ankara:Turkey; Izmir:Turkey; '
            'Amsterdam:Netherlands; Rotterdam:Netherlands; Utrecht:Netherlands; Lisbon:Portugal; Porto:Portugal; '
            'Athens:Greece; Thessaloniki:Greece; Vienna:Austria; Salzburg:Austria; Stockholm:Sweden; '
            'Gothenburg:Sweden; Oslo:Norway; Bergen:Norway; Dublin:Ireland; Cork:Ireland; Warsaw:Poland; '
            'Krakow:Poland; Buenos Aires:Argentina; Rio de Janeiro:Brazil; Sao Paulo:Brazil; Brasilia:Brazil; Mexico '
            'City:Mexico; Guadalajara:Mexico; Seoul:Korea; Busan:Korea; Bangkok:Thailand; Hanoi:Vietnam; '
            'Jakarta:Indonesia; Manila:Philippines; Nairobi:Kenya; Lagos:Nigeria; Edinburgh:Scotland; '
            'Glasgow:Scotland; Zurich:Switzerland; Geneva:Switzerland; Brussels:Belgium; Antwerp:Belgium; '
            'Copenhagen:Denmark; Helsinki:Finland; Budapest:Hungary; Prague:Czech; Bucharest:Romania; Sofia:Bulgaria; '
            'Kyiv:Ukraine'
        ),
    ),
    "city_state": Relation(
        "P131", '{} is a city in the state of',
        ('The city of {} is located in the state of', '{} is a city in the US state of'),
        ('{} is a city where', 'People who live in {} often'),
        (
            'Los Angeles:California; San Francisco:California; San Diego:California; Sacramento:California; San '
            'Jose:California; Oakland:California; Houston:Texas; Dallas:Texas; Austin:Texas; San Antonio:Texas; El '
            'Paso:Texas; Miami:Florida; Orlando:Florida; Tampa:Florida; Jacksonville:Florida; Tallahassee:Florida; '
            'Chicago:Illinois; Seattle:Washington; Spokane:Washington; Boston:Massachusetts; Atlanta:Georgia; '
            'Savannah:Georgia; Detroit:Michigan; Phoenix:Arizona; Tucson:Arizona; Denver:Colorado; Las Vegas:Nevada; '
            'Reno:Nevada; New Orleans:Louisiana; Philadelphia:Pennsylvania; Pittsburgh:Pennsylvania; Portland:Oregon; '
            'Nashville:Tennessee; Memphis:Tennessee; Cleveland:Ohio; Columbus:Ohio; Cincinnati:Ohio; '
            'Baltimore:Maryland; Milwaukee:Wisconsin; Minneapolis:Minnesota; Indianapolis:Indiana; '
            'Charlotte:Carolina; Honolulu:Hawaii; Anchorage:Alaska; Salt Lake City:Utah; Buffalo:New York; Albany:New '
            'York'
        ),
    ),
    "landmark_city": Relation(
        "P131", 'The {} is located in the city of',
        ('The {} stands in the city of', 'To see the {}, you have to travel to the city of'),
        ('The {} is famous because', 'Visitors to the {} can'),
        (
            'Eiffel Tower:Paris; Louvre:Paris; Arc de Triomphe:Paris; Notre-Dame Cathedral:Paris; Colosseum:Rome; '
            'Pantheon:Rome; Trevi Fountain:Rome; Big Ben:London; Tower Bridge:London; Buckingham Palace:London; '
            'British Museum:London; Westminster Abbey:London; Brandenburg Gate:Berlin; Reichstag:Berlin; Sagrada '
            'Familia:Barcelona; Kremlin:Moscow; Red Square:Moscow; Acropolis:Athens; Parthenon:Athens; Golden Gate '
            'Bridge:San Francisco; Space Needle:Seattle; Statue of Liberty:New York; Times Square:New York; Central '
            'Park:New York; Empire State Building:New York; Sydney Opera House:Sydney; Forbidden City:Beijing; Taj '
            'Mahal:Agra; Burj Khalifa:Dubai; Hagia Sophia:Istanbul; Blue Mosque:Istanbul; Leaning Tower:Pisa; St. '
            "Mark's Basilica:Venice; Rialto Bridge:Venice; Uffizi Gallery:Florence; Prado Museum:Madrid; "
            'Alhambra:Granada; White House:Washington; Lincoln Memorial:Washington; CN Tower:Toronto; Hollywood '
            'Sign:Los Angeles; Gateway Arch:St. Louis; Vatican Museums:Rome; Rijksmuseum:Amsterdam; Atomium:Brussels; '
            'Little Mermaid statue:Copenhagen; Christ the Redeemer:Rio de Janeiro'
        ),
    ),
    "company_country": Relation(
        "P17", '{} is a multinational company from',
        ('{} is a company headquartered in', 'The headquarters of {} are in'),
        ('{} is a company that', 'The products of {} are'),
        (
            'Toyota:Japan; Honda:Japan; Sony:Japan; Nintendo:Japan; Panasonic:Japan; Mitsubishi:Japan; Nissan:Japan; '
            'Toshiba:Japan; Canon:Japan; Yamaha:Japan; Suzuki:Japan; Mazda:Japan; BMW:Germany; Siemens:Germany; '
            'Volkswagen:Germany; Adidas:Germany; Bosch:Germany; Porsche:Germany; Audi:Germany; Bayer:Germany; '
            'Lufthansa:Germany; Puma:Germany; Mercedes-Benz:Germany; SAP:Germany; Samsung:Korea; Hyundai:Korea; '
            'Kia:Korea; Nokia:Finland; IKEA:Sweden; Volvo:Sweden; Ericsson:Sweden; Spotify:Sweden; H&M:Sweden; '
            'Ferrari:Italy; Fiat:Italy; Lamborghini:Italy; Gucci:Italy; Prada:Italy; Pirelli:Italy; Renault:France; '
            "Peugeot:France; Michelin:France; Airbus:France; Chanel:France; Danone:France; L'Oreal:France; "
            'Nestle:Switzerland; Rolex:Switzerland; Novartis:Switzerland; Philips:Netherlands; Heineken:Netherlands; '
            'Shell:Netherlands; Lego:Denmark; Carlsberg:Denmark; Huawei:China; Alibaba:China; Lenovo:China; '
            'Tencent:China; Xiaomi:China; Tata:India; Infosys:India; Microsoft:America; Apple:America; '
            'Google:America; Amazon:America; Walmart:America; Boeing:America; Coca-Cola:America; Rolls-Royce:England; '
            'Unilever:England; Vodafone:England; Tesco:England; Gazprom:Russia; Aeroflot:Russia; Zara:Spain; '
            'Seat:Spain; Telefonica:Spain'
        ),
    ),
    "product_company": Relation(
        "P176", 'The {} is a product made by',
        ('The {} is made by', 'The {} was developed by'),
        ('The {} is', 'People buy the {} because'),
        (
            'iPhone:Apple; iPad:Apple; MacBook:Apple; iPod:Apple; Apple Watch:Apple; Safari:Apple; Windows:Microsoft; '
            'Xbox:Microsoft; Microsoft Office:Microsoft; Excel:Microsoft; Outlook:Microsoft; Bing:Microsoft; '
            'PlayStation:Sony; Walkman:Sony; Android:Google; Gmail:Google; Google Chrome:Google; YouTube:Google; '
            'Pixel phone:Google; Galaxy phone:Samsung; Kindle:Amazon; Alexa:Amazon; Mustang:Ford; F-150:Ford; '
            'Corolla:Toyota; Prius:Toyota; Camry:Toyota; Civic:Honda; Accord:Honda; Golf:Volkswagen; '
            'Beetle:Volkswagen; Model S:Tesla; Model 3:Tesla; Switch:Nintendo; Game Boy:Nintendo; Wii:Nintendo; '
            'Boeing 747:Boeing; A380:Airbus; Photoshop:Adobe; Acrobat:Adobe; ThinkPad:Lenovo; Corvette:Chevrolet; '
            'Camaro:Chevrolet; 911:Porsche; Instagram:Facebook; WhatsApp:Facebook; Big Mac:McDonald; Pepsi:PepsiCo'
        ),
    ),
    "country_language": Relation(
        "P37", 'The official language of {} is',
        ('In {}, most people speak', 'The people of {} speak'),
        ('{} is a country where', 'The culture of {} is'),
        (
            'France:French; Germany:German; Italy:Italian; Spain:Spanish; Japan:Japanese; China:Chinese; '
            'Russia:Russian; Greece:Greek; Portugal:Portuguese; Poland:Polish; Sweden:Swedish; Norway:Norwegian; '
            'Finland:Finnish; Turkey:Turkish; Brazil:Portuguese; Mexico:Spanish; Egypt:Arabic; Iran:Persian; '
            'Israel:Hebrew; Korea:Korean; Vietnam:Vietnamese; Thailand:Thai; Hungary:Hungarian; the '
            'Netherlands:Dutch; Denmark:Danish; Ukraine:Ukrainian; Indonesia:Indonesian; England:English; '
            'Argentina:Spanish; Chile:Spanish; Peru:Spanish; Cuba:Spanish; Colombia:Spanish; Venezuela:Spanish; '
            'Bolivia:Spanish; Uruguay:Spanish; Ecuador:Spanish; Austria:German; Romania:Romanian; Bulgaria:Bulgarian; '
            'Serbia:Serbian; Croatia:Croatian; Iceland:Icelandic; Pakistan:Urdu; Bangladesh:Bengali; Syria:Arabic; '
            'Iraq:Arabic; Morocco:Arabic; Saudi Arabia:Arabic; Jordan:Arabic; Libya:Arabic; Tunisia:Arabic; '
            'Algeria:Arabic; Lebanon:Arabic; Australia:English; Canada:English; New Zealand:English; Jamaica:English; '
            'Ireland:English; Angola:Portuguese; Mozambique:Portuguese; Lithuania:Lithuanian; Latvia:Latvian; '
            'Estonia:Estonian; Slovakia:Slovak; Slovenia:Slovenian; Albania:Albanian; Armenia:Armenian; '
            'Georgia:Georgian; Mongolia:Mongolian; Kenya:Swahili; Tanzania:Swahili'
        ),
    ),
    "country_continent": Relation(
        "P30", '{} is a country on the continent of',
        ('{} is located in', '{} is a country in'),
        ('{} is a country where', 'The history of {} is'),
        (
            'France:Europe; Germany:Europe; Italy:Europe; Spain:Europe; Poland:Europe; Sweden:Europe; Norway:Europe; '
            'Greece:Europe; Portugal:Europe; Austria:Europe; Hungary:Europe; Belgium:Europe; Switzerland:Europe; '
            'Denmark:Europe; Finland:Europe; Ireland:Europe; Romania:Europe; Ukraine:Europe; Japan:Asia; China:Asia; '
            'India:Asia; Thailand:Asia; Vietnam:Asia; Korea:Asia; Indonesia:Asia; Malaysia:Asia; Pakistan:Asia; '
            'Nepal:Asia; Mongolia:Asia; Bangladesh:Asia; Cambodia:Asia; Laos:Asia; Philippines:Asia; Egypt:Africa; '
            'Nigeria:Africa; Kenya:Africa; Ethiopia:Africa; Ghana:Africa; Morocco:Africa; Algeria:Africa; '
            'Tanzania:Africa; Uganda:Africa; Zambia:Africa; Zimbabwe:Africa; Senegal:Africa; Mali:Africa; '
            'Sudan:Africa; Somalia:Africa; Angola:Africa; Namibia:Africa; Botswana:Africa; Cameroon:Africa; '
            'Madagascar:Africa; Brazil:South America; Argentina:South America; Chile:South America; Peru:South '
            'America; Colombia:South America; Venezuela:South America; Bolivia:South America; Ecuador:South America; '
            'Uruguay:South America; Paraguay:South America; Canada:North America; Mexico:North America; '
            'Australia:Oceania; New Zealand:Oceania; Fiji:Oceania'
        ),
    ),
    "country_currency": Relation(
        "P38", 'The currency of {} is the',
        ('The official currency of {} is the', 'In {}, people pay with the'),
        ('{} is a country where', 'The economy of {} is'),
        (
            'Japan:yen; China:yuan; India:rupee; Pakistan:rupee; Russia:ruble; England:pound; Britain:pound; '
            'Egypt:pound; Mexico:peso; Argentina:peso; Chile:peso; Colombia:peso; Philippines:peso; Cuba:peso; '
            'France:euro; Germany:euro; Italy:euro; Spain:euro; Portugal:euro; Greece:euro; Austria:euro; '
            'Ireland:euro; Finland:euro; Belgium:euro; the Netherlands:euro; Canada:dollar; Australia:dollar; New '
            'Zealand:dollar; Singapore:dollar; Jamaica:dollar; Brazil:real; Korea:won; Thailand:baht; Vietnam:dong; '
            'Israel:shekel; Poland:zloty; Turkey:lira; Switzerland:franc; Sweden:krona; Norway:krone; Denmark:krone; '
            'Hungary:forint; Ukraine:hryvnia; Indonesia:rupiah; Nigeria:naira; South Africa:rand'
        ),
    ),
    "person_occupation": Relation(
        "P106", '{} is best known as a',
        ('{} worked as a', 'By profession, {} was a'),
        ('{} is remembered for', 'The life of {} was'),
        (
            'Wolfgang Amadeus Mozart:composer; Ludwig van Beethoven:composer; Johann Sebastian Bach:composer; '
            'Frederic Chopin:composer; Richard Wagner:composer; Giuseppe Verdi:composer; Franz Schubert:composer; '
            'Antonio Vivaldi:composer; Pyotr Tchaikovsky:composer; Pablo Picasso:painter; Vincent van Gogh:painter; '
            'Claude Monet:painter; Rembrandt:painter; Salvador Dali:painter; Henri Matisse:painter; Paul '
            'Cezanne:painter; Frida Kahlo:painter; Edgar Degas:painter; Albert Einstein:physicist; Isaac '
            'Newton:physicist; Niels Bohr:physicist; Max Planck:physicist; Richard Feynman:physicist; Enrico '
            'Fermi:physicist; Werner Heisenberg:physicist; Erwin Schrodinger:physicist; William '
            'Shakespeare:playwright; Charles Dickens:novelist; Jane Austen:novelist; Leo Tolstoy:novelist; Ernest '
            'Hemingway:novelist; Mark Twain:novelist; Virginia Woolf:novelist; Fyodor Dostoevsky:novelist; Emily '
            'Dickinson:poet; Walt Whitman:poet; John Keats:poet; Lord Byron:poet; Robert Frost:poet; Edgar Allan '
            'Poe:poet; Charles Darwin:naturalist; Marie Curie:chemist; Louis Pasteur:chemist; Dmitri '
            'Mendeleev:chemist; Sigmund Freud:psychoanalyst; Plato:philosopher; Aristotle:philosopher; Immanuel '
            'Kant:philosopher; Friedrich Nietzsche:philosopher; Socrates:philosopher; Rene Descartes:philosopher; '
            'John Locke:philosopher; Tom Hanks:actor; Leonardo DiCaprio:actor; Brad Pitt:actor; Marlon Brando:actor; '
            'Robert De Niro:actor; Al Pacino:actor; Morgan Freeman:actor; Denzel Washington:actor; Steven '
            'Spielberg:director; Alfred Hitchcock:director; Stanley Kubrick:director; Martin Scorsese:director; '
            'Quentin Tarantino:director'
        ),
    ),
    "athlete_sport": Relation(
        "P641", '{} is a professional athlete who plays',
        ('{} is a professional', '{} became famous playing'),
        ('{} is known for', 'The career of {} began'),
        (
            'Michael Jordan:basketball; LeBron James:basketball; Kobe Bryant:basketball; Stephen Curry:basketball; '
            "Shaquille O'Neal:basketball; Kevin Durant:basketball; Magic Johnson:basketball; Larry Bird:basketball; "
            'Lionel Messi:soccer; Cristiano Ronaldo:soccer; Neymar:soccer; Pele:soccer; Diego Maradona:soccer; '
            'Zinedine Zidane:soccer; David Beckham:soccer; Wayne Rooney:soccer; Kylian Mbappe:soccer; '
            'Ronaldinho:soccer; Roger Federer:tennis; Serena Williams:tennis; Rafael Nadal:tennis; Novak '
            'Djokovic:tennis; Andy Murray:tennis; Venus Williams:tennis; Maria Sharapova:tennis; Pete Sampras:tennis; '
            'Andre Agassi:tennis; Tiger Woods:golf; Jack Nicklaus:golf; Phil Mickelson:golf; Rory McIlroy:golf; '
            'Arnold Palmer:golf; Babe Ruth:baseball; Derek Jeter:baseball; Hank Aaron:baseball; Barry Bonds:baseball; '
            'Willie Mays:baseball; Tom Brady:football; Peyton Manning:football; Joe Montana:football; Jerry '
            'Rice:football; Wayne Gretzky:hockey; Sidney Crosby:hockey; Mario Lemieux:hockey; Alex Ovechkin:hockey; '
            'Sachin Tendulkar:cricket; Don Bradman:cricket; Virat Kohli:cricket; Brian Lara:cricket'
        ),
    ),
    "capital": Relation(
        "P36", 'The capital of {} is the city of',
        ('The capital city of {} is', "{}'s capital is the city of"),
        ('{} is a country where', 'The government of {} is'),
        (
            'France:Paris; Italy:Rome; Germany:Berlin; Spain:Madrid; Japan:Tokyo; Russia:Moscow; Egypt:Cairo; '
            'England:London; Greece:Athens; Austria:Vienna; Poland:Warsaw; Ireland:Dublin; Portugal:Lisbon; '
            'Norway:Oslo; China:Beijing; Canada:Ottawa; Kenya:Nairobi; Peru:Lima; Cuba:Havana; Thailand:Bangkok; '
            'Hungary:Budapest; Sweden:Stockholm; Denmark:Copenhagen; Finland:Helsinki; Turkey:Ankara; '
            'Australia:Canberra; Chile:Santiago; Iran:Tehran; Iraq:Baghdad; Syria:Damascus; Belgium:Brussels; the '
            'Netherlands:Amsterdam; Switzerland:Bern; Romania:Bucharest; Vietnam:Hanoi; Indonesia:Jakarta; the '
            'Philippines:Manila; Morocco:Rabat; Colombia:Bogota; Venezuela:Caracas; Scotland:Edinburgh; '
            'Wales:Cardiff; Lebanon:Beirut; Afghanistan:Kabul; Nepal:Kathmandu; Ghana:Accra; Bulgaria:Sofia; '
            'Serbia:Belgrade; Croatia:Zagreb; Bangladesh:Dhaka; Libya:Tripoli; Tunisia:Tunis; Qatar:Doha; '
            'Uganda:Kampala; Latvia:Riga; Ecuador:Quito; Argentina:Buenos Aires; South Korea:Seoul; India:New Delhi; '
            'Mexico:Mexico City; Brazil:Brasilia; Ukraine:Kyiv; the Czech Republic:Prague'
        ),
    ),
    "instrument": Relation(
        "P1303", '{} is a musician who plays the',
        ('{} is best known for playing the', '{} is famous for playing the'),
        ('{} is known for', 'The music of {} is'),
        (
            'Jimi Hendrix:guitar; Eric Clapton:guitar; Jimmy Page:guitar; Carlos Santana:guitar; B.B. King:guitar; '
            'Eddie Van Halen:guitar; Keith Richards:guitar; Louis Armstrong:trumpet; Miles Davis:trumpet; Dizzy '
            'Gillespie:trumpet; Wynton Marsalis:trumpet; John Coltrane:saxophone; Charlie Parker:saxophone; Kenny '
            'G:saxophone; Sonny Rollins:saxophone; Yo-Yo Ma:cello; Pablo Casals:cello; Jacqueline du Pre:cello; '
            'Itzhak Perlman:violin; Niccolo Paganini:violin; Joshua Bell:violin; Jascha Heifetz:violin; Elton '
            'John:piano; Franz Liszt:piano; Vladimir Horowitz:piano; Lang Lang:piano; Glenn Gould:piano; Ray '
            'Charles:piano; Ringo Starr:drums; John Bonham:drums; Neil Peart:drums; Keith Moon:drums; Buddy '
            'Rich:drums; Paul McCartney:bass; Flea:bass; Sting:bass'
        ),
    ),
    "author_language": Relation(
        "P1412", "{}'s native language is",
        ('The mother tongue of {} is', '{} wrote in the language of'),
        ('{} is known for', 'The books of {} are'),
        (
            'Victor Hugo:French; Moliere:French; Voltaire:French; Albert Camus:French; Marcel Proust:French; '
            'Alexandre Dumas:French; Jules Verne:French; Emile Zola:French; Gustave Flaubert:French; Dante '
            'Alighieri:Italian; Giovanni Boccaccio:Italian; Petrarch:Italian; Umberto Eco:Italian; Italo '
            'Calvino:Italian; Johann Wolfgang von Goethe:German; Friedrich Schiller:German; Thomas Mann:German; Franz '
            'Kafka:German; Hermann Hesse:German; Bertolt Brecht:German; Heinrich Heine:German; Leo Tolstoy:Russian; '
            'Fyodor Dostoevsky:Russian; Anton Chekhov:Russian; Alexander Pushkin:Russian; Nikolai Gogol:Russian; Ivan '
            'Turgenev:Russian; Vladimir Nabokov:Russian; Miguel de Cervantes:Spanish; Gabriel Garcia Marquez:Spanish; '
            'Jorge Luis Borges:Spanish; Pablo Neruda:Spanish; Federico Garcia Lorca:Spanish; Mario Vargas '
            'Llosa:Spanish; Luis de Camoes:Portuguese; Fernando Pessoa:Portuguese; Jose Saramago:Portuguese; Paulo '
            'Coelho:Portuguese; Haruki Murakami:Japanese; Yukio Mishima:Japanese; Kenzaburo Oe:Japanese; Homer:Greek; '
            'Sophocles:Greek; Euripides:Greek; Virgil:Latin; Ovid:Latin; Cicero:Latin; Horace:Latin'
        ),
    ),
}
"""The built-in relations by name."""
