import STOPWORDS_ISO from 'stopwords-iso/stopwords-iso.json';

/*
 * Stopwords: function words, number words and very common verbs, adverbs and
 * time words link sentences to each other without saying what a document is
 * about, so they count neither toward sentence similarity nor as keywords.
 * Every language comes from stopwords-iso (58 languages, 200 KB of JSON in
 * the bundle: the detector can name any of them, and a document in a language
 * without a list would get its function words as keywords). English adds the
 * list this module always had (contractions, number words, "said"), time
 * words and reporting verbs ("told", "according"): news is full of them.
 */
const ENGLISH_EXTRA: readonly string[] =
  `a about above across after afterwards again against all almost alone along already also although always am among
amongst an and another any anybody anyhow anyone anything anyway anywhere are aren't around as at back be became
because become becomes becoming been before beforehand behind being below beside besides between beyond both but by
can can't cannot could couldn't did didn't do does doesn't doing don't done down during each eg either else elsewhere
enough etc even ever every everybody everyone everything everywhere except few first for former formerly from further
get gets getting give given gives go goes going gone got had hadn't has hasn't have haven't having he he'd he'll he's
hence her here here's hereafter hereby herein hers herself him himself his how how's however i i'd i'll i'm i've ie if
in indeed instead into is isn't it it's its itself just keep keeps kept last latter latterly least less let let's like
made make makes making many may maybe me meanwhile might mine more moreover most mostly much must mustn't my myself
namely neither never nevertheless next no nobody none noone nor not nothing now nowhere of off often on once one ones
only onto or other others otherwise our ours ourselves out over own per perhaps put quite rather re really said same
say says see seem seemed seeming seems seen several shall shan't she she'd she'll she's should shouldn't show since
so some somebody somehow someone something sometime sometimes somewhere still such take taken than that that's the
their theirs them themselves then thence there there's thereafter thereby therefore therein thereupon these they
they'd they'll they're they've thing things this those though through throughout thru thus to together too toward
towards two under until up upon us use used uses using very via was wasn't way we we'd we'll we're we've well were
weren't what what's whatever when when's whence whenever where where's whereafter whereas whereby wherein whereupon
wherever whether which while whither who who's whoever whole whom whose why why's will with within without won't
would wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves
zero three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds thousand
thousands million millions billion billions second third half year years day days today new old
week weeks month months hour hours minute minutes time times tonight yesterday tomorrow morning night
told tell tells telling added adding according asked asking reported reportedly people thing lot lots`.split(/\s+/);

const LISTS = STOPWORDS_ISO as unknown as Record<string, readonly string[]>;

const BY_LANGUAGE: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries(LISTS).map(([language, words]) => [
    language,
    new Set(language === 'en' ? [...words, ...ENGLISH_EXTRA].map((w) => w.toLowerCase()) : words.map((w) => w.toLowerCase())),
  ]),
);

/** The stopwords of a language (ISO 639-1); English for an undetermined one, whose text is most often English. */
export function stopwordsFor(language: string): ReadonlySet<string> {
  return BY_LANGUAGE.get(language) ?? (language === 'und' ? BY_LANGUAGE.get('en')! : EMPTY);
}

const EMPTY: ReadonlySet<string> = new Set();
