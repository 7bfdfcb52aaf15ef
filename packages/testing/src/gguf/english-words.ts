/**
 * Common English words, most frequent first, plus words the project's sample documents use
 * (legal, medical, office). The tiny tokenizers take as many as fit, so ordinary text splits
 * into word-sized tokens instead of single characters.
 */
export const ENGLISH_WORDS: readonly string[] = `
the of and to a in is that for it as was with be by on not he this are or his from at which but
have an they you were her she there been one all we their has would when if will more no out so
said what up its about into than them can only other new some could time these two may first then
do any like my now over such our man me even most made after also did many before must through
back years where much your way well down should because each just those people how too little state
good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used take
three part patient date name report court case order page section agreement party parties contract
payment notice letter dear sincerely regards office meeting review result results test blood pressure
heart rate history medical clinic doctor nurse treatment plan follow visit note notes summary
document documents file files text data model input output question answer request response please
thank thanks information include includes included following shall herein hereby terms term law
legal claim claims appeal judge decision opinion evidence witness defendant plaintiff counsel
services service provide provided company business client account amount total price cost fee
address phone email number city street county district house home family child children mother father
wife husband friend school student teacher book story stories read write written word words sentence
English language example simple small large big high low open close start end begin began next
left right hand head face eye eyes body mind water food room door car road place point group
program problem system process change number public general political social national international
market money business power service government level health care hospital care daily weekly monthly
morning evening night today tomorrow yesterday week month hour minute second Monday Friday January
The This It In He She We They I You A An And But For If On At As To Of What When Where Who Why How
yes okay also however therefore although though whether without within among across around above
below again always often sometimes usually already almost enough quite rather really perhaps
find found give given gave keep kept let put set show shown tell told think thought seem seemed
feel felt leave left call called ask asked need needed want wanted try tried use uses using help
`
  .split(/\s+/)
  .filter((word) => word.length > 0);

/** Word pieces that end many English words; tokens for their prefixes let the tokenizer merge them. */
export const ENGLISH_SUFFIXES: readonly string[] = [
  'ing',
  'ed',
  'er',
  'ly',
  'es',
  'tion',
  'ment',
  'ness',
  'al',
  'ity',
  'ive',
  'ous',
  'ers',
  'est',
  'ful',
];
