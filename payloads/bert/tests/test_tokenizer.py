import unittest

from berth_bert.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer, basic_tokenize, build_vocab


def tok(words: list[str], lower_case: bool = True) -> WordPieceTokenizer:
    return WordPieceTokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + words)}, lower_case)


class BasicTokenizerTest(unittest.TestCase):
    def test_lower_case_strips_accents_and_splits_punctuation(self):
        self.assertEqual([t.text for t in basic_tokenize("Héllo, WORLD!  Naïve café's", True)],
                         ["hello", ",", "world", "!", "naive", "cafe", "'", "s"])

    def test_cased_keeps_case_and_accents(self):
        self.assertEqual([t.text for t in basic_tokenize("Héllo, WORLD!", False)], ["Héllo", ",", "WORLD", "!"])

    def test_cjk_characters_are_single_tokens_and_controls_vanish(self):
        self.assertEqual([t.text for t in basic_tokenize("ab北京\x00c\u200bd", True)], ["ab", "北", "京", "cd"])

    def test_ascii_symbols_count_as_punctuation(self):
        self.assertEqual([t.text for t in basic_tokenize("$5^2 a-b", True)], ["$", "5", "^", "2", "a", "-", "b"])

    def test_offsets_point_into_the_original_text(self):
        text = "  Héllo,\tWORLD"
        self.assertEqual([(t.start, t.end, text[t.start:t.end]) for t in basic_tokenize(text, True)],
                         [(2, 7, "Héllo"), (7, 8, ","), (9, 14, "WORLD")])


class WordPieceTest(unittest.TestCase):
    def test_greedy_longest_match_first(self):
        # The example from BERT's tokenization.py.
        t = tok(["un", "##aff", "##able", "runn", "##ing", "run", "##n", ","])
        self.assertEqual(t.tokenize("unaffable"), ["un", "##aff", "##able"])
        self.assertEqual(t.tokenize("running"), ["runn", "##ing"])

    def test_a_word_that_cannot_be_covered_is_one_unk(self):
        t = tok(["un", "##aff", "##able", "runn", "##ing", ","])
        self.assertEqual(t.tokenize("unwanted running,"), ["[UNK]", "runn", "##ing", ","])

    def test_piece_offsets_and_ids(self):
        t = tok(["un", "##aff", "##able"])
        pieces = t.tokenize_with_offsets("x UnAffable")
        self.assertEqual([(p.text, p.start, p.end) for p in pieces],
                         [("[UNK]", 0, 1), ("un", 2, 4), ("##aff", 4, 7), ("##able", 7, 11)])
        self.assertEqual(t.encode("unaffable"), [5, 6, 7])

    def test_cased_vocab_does_not_match_lower_case_entries(self):
        self.assertEqual(tok(["hello", "Hello"], lower_case=False).tokenize("Hello hello"), ["Hello", "hello"])
        self.assertEqual(tok(["hello"], lower_case=False).tokenize("HELLO"), ["[UNK]"])

    def test_build_vocab_covers_the_corpus_without_unk(self):
        corpus = ["The harbour of Velmora lies on Kesh.", "Velmora ships copper; Kesh ships salt."] * 3
        words = build_vocab(corpus, size=60)
        self.assertEqual(words[:5], list(SPECIAL_TOKENS))
        self.assertEqual(len(words), len(set(words)))
        self.assertLessEqual(len(words), 60)
        t = tok(words[5:])
        self.assertIn("velmora", words)
        self.assertNotIn("[UNK]", t.tokenize("Velmora ships salt to Kesh; the harbour lies."))
        # A word never seen is still spelled out from the character pieces.
        self.assertNotIn("[UNK]", t.tokenize("shore"))


if __name__ == "__main__":
    unittest.main()
