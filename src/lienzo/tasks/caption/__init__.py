"""The caption task: image–sentence retrieval in a joint space (`caption.model: rank`, the draft thesis's
model: image features → affine, sentences → a recurrent network over word vectors, a bidirectional ranking
loss) and caption generation (`showtell`: Vinyals et al.; `attend`: Xu et al.'s soft attention), on image
features computed once by the transfer pipeline and cached.

    lienzo train configs/flickr8k_vgg16_rank.yaml
    lienzo caption describe runs/flickr8k_showtell photo.jpg --beam 3
    lienzo evaluate runs/flickr8k_vgg16_rank

An epoch is every training caption once, paired with its image. Validation scores the validation images
after every epoch: R@1/5/10 both ways (`val_rsum`, their sum, chooses best.ckpt) for retrieval; the
teacher-forced loss and greedy captions' BLEU-4 and CIDEr-D (`val_cider` chooses) for generation.

    config.py    the `caption` section and the task's defaults of the shared sections
    data.py      CaptionData: cached image features, vocabulary, caption splits
    module.py    CaptionModule: losses, validation, building a run's networks
    evaluate.py  a split's results (Recall@K, BLEU/CIDEr) and the report's sections
    task.py      Caption: the Task the spine talks to
    use.py       the `lienzo caption describe/search/annotate` verbs;  study.py, scenes.py: `lienzo study captions`
"""

from lienzo.tasks.caption.config import GENERATORS, MARGINS, CaptionConfig, validate
from lienzo.tasks.caption.module import CaptionModule, build_network, init_word_vectors
from lienzo.tasks.caption.task import Caption, check_caption_run

__all__ = ["GENERATORS", "MARGINS", "Caption", "CaptionConfig", "CaptionModule", "build_network", "check_caption_run",
           "init_word_vectors", "validate"]
