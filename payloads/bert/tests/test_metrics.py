import unittest

from berth_bert.metrics import classification_scores, entities, entity_f1, f1, normalize_answer, squad_scores


class SquadMetricTest(unittest.TestCase):
    def test_normalisation_drops_case_punctuation_articles_and_spaces(self):
        self.assertEqual(normalize_answer("The  Quick, brown fox!"), "quick brown fox")
        self.assertEqual(normalize_answer("an apple a day"), "apple day")
        self.assertEqual(normalize_answer("theatre"), "theatre")  # "the" only as a whole word

    def test_worked_f1(self):
        # prediction "the cat sat" -> [cat, sat]; gold "a cat sat on the mat" -> [cat, sat, on, mat]
        # precision 2/2, recall 2/4, F1 = 2 * 1 * 0.5 / 1.5
        self.assertAlmostEqual(f1("the cat sat", "a cat sat on the mat"), 2 / 3)
        self.assertEqual(f1("dog", "cat"), 0.0)
        # repeated tokens count once per match: pred [a1 a1 b], gold [a1 b b] -> common 2
        self.assertAlmostEqual(f1("x x y", "x y y"), 2 / 3)

    def test_best_over_gold_answers_and_percent(self):
        preds = {"q1": "Denver Broncos", "q2": "the 1990s", "q3": "Paris France"}
        golds = {"q1": ["Denver Broncos", "Broncos"], "q2": ["1990s"], "q3": ["Paris"], "q4": ["x"]}
        s = squad_scores(preds, golds)
        # EM: q1 1, q2 1, q3 0, q4 0 (missing prediction) -> 50; F1: 1 + 1 + 2/3 + 0 -> 66.67
        self.assertAlmostEqual(s["exact_match"], 50.0)
        self.assertAlmostEqual(s["F1"], 100 * (2 + 2 / 3) / 4)

    def test_v2_unanswerable_needs_an_empty_prediction(self):
        self.assertEqual(squad_scores({"q": ""}, {"q": []}), {"exact_match": 100.0, "F1": 100.0})
        self.assertEqual(squad_scores({"q": "x"}, {"q": []}), {"exact_match": 0.0, "F1": 0.0})


class ClassificationMetricTest(unittest.TestCase):
    def test_binary_accuracy_f1_mcc(self):
        # tp=2 (1,1) x2, tn=1, fp=1, fn=1
        preds, golds = [1, 1, 0, 1, 0], [1, 1, 0, 0, 1]
        s = classification_scores(preds, golds, 2)
        self.assertAlmostEqual(s["accuracy"], 3 / 5)
        self.assertAlmostEqual(s["F1"], 2 * 2 / (2 * 2 + 1 + 1))
        # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2-1)/sqrt(3*3*2*2) = 1/6
        self.assertAlmostEqual(s["mcc"], 1 / 6)

    def test_perfect_and_constant_predictions(self):
        self.assertAlmostEqual(classification_scores([0, 1, 2], [0, 1, 2], 3)["mcc"], 1.0)
        self.assertEqual(classification_scores([0, 0, 0], [0, 1, 0], 2)["mcc"], 0.0)


class EntityF1Test(unittest.TestCase):
    def test_chunks_follow_conlleval(self):
        self.assertEqual(entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC", "I-ORG"]),
                         {("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4), ("LOC", 5, 5), ("ORG", 6, 6)})

    def test_entity_level_scores(self):
        gold = [["B-PER", "I-PER", "O", "B-LOC"]]
        pred = [["B-PER", "O", "O", "B-LOC"]]  # PER cut short: wrong entity; LOC right
        s = entity_f1(pred, gold)
        self.assertEqual((s["precision"], s["recall"], s["F1"]), (0.5, 0.5, 0.5))


if __name__ == "__main__":
    unittest.main()
