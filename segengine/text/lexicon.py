"""The built-in intent lexicon for live-commerce comments (Chinese and English).

Each intent is a list of phrases; a comment has the intent when it contains one of them
as a case-insensitive substring (``str.casefold`` on both sides). A rules file's
``[intents] NAME = [...]`` replaces the list of a built-in intent of that name, or adds a
new intent. The phrases are short on purpose: live-room comments are a few words, mixed
Chinese and English, with emoji and typos; a phrase that also occurs inside unrelated words
is left out.
"""

from __future__ import annotations

__all__ = ["BUILTIN_INTENTS"]

#: intent name -> phrases (matched as case-insensitive substrings)
BUILTIN_INTENTS: dict[str, tuple[str, ...]] = {
    "price": (
        "多少钱", "几块", "几元", "价格", "价钱", "啥价", "什么价", "怎么卖", "咋卖", "多少米", "多钱", "贵不贵",
        "售价", "单价", "报价", "价位", "多少一", "什么价位", "怎么收费", "价格多少",
        "how much", "price", "costs", "how much is", "how many dollars", "what's the price", "pricing",
    ),
    "buy": (
        "买了", "要买", "想买", "我要", "下单", "拍了", "已拍", "拍下", "上车", "抢到", "抢了", "冲了", "入手",
        "怎么买", "怎么拍", "链接", "上链接", "求链接", "加购", "付款了", "已付", "买买买", "带走", "来一单",
        "buy", "bought", "order", "ordered", "purchase", "checkout", "add to cart", "i want", "link", "take my money",
    ),
    "size": (
        "尺码", "码数", "多大码", "什么码", "几码", "尺寸", "大小", "身高", "体重", "偏大", "偏小", "合身",
        "穿什么码", "多长", "多宽", "规格", "均码", "加大码", "s码", "m码", "l码", "xl",
        "size", "sizing", "will it fit", "fits", "too big", "too small", "measurements", "length", "width",
    ),
    "shipping": (
        "发货", "快递", "包邮", "几天到", "多久到", "什么时候到", "什么时候发", "物流", "运费", "邮费", "到货",
        "顺丰", "配送", "送到", "偏远", "次日达", "当天发", "发什么快递", "退货运费",
        "shipping", "ship to", "delivery", "deliver", "arrive", "courier", "tracking", "postage", "free shipping",
    ),
    "discount": (
        "优惠", "便宜点", "便宜", "打折", "折扣", "优惠券", "券", "满减", "降价", "活动价", "福利", "秒杀",
        "红包", "减价", "抹零", "砍价", "赠品", "送什么", "买一送一", "再便宜", "最低价", "能便宜",
        "discount", "coupon", "cheaper", "deal", "promo", "promotion", "on sale", "% off", "bogo", "free gift",
    ),
    "quality_doubt": (
        "正品吗", "是正品", "真的假的", "假货", "真假", "质量怎么样", "质量好吗", "靠谱吗", "会不会", "掉色",
        "起球", "耐用吗", "有没有味道", "安全吗", "有保障吗", "保质期", "过期", "三无", "翻新", "二手",
        "is it real", "fake", "authentic", "original", "legit", "quality", "durable", "is it safe", "knockoff",
    ),
    "complaint": (
        "差评", "投诉", "退款", "退货", "骗子", "骗人", "坑人", "太差", "垃圾", "不好用", "质量差", "坏了",
        "破了", "没收到", "还没到", "还没发", "不发货", "客服不回", "失望", "上当", "假的", "退钱",
        "refund", "scam", "broken", "terrible", "worst", "never arrived", "not received", "complain", "disappointed",
        "waste of money", "return",
    ),
    "praise": (
        "好看", "好用", "喜欢", "太棒", "真棒", "很棒", "不错", "质量好", "好评", "推荐", "爱了", "绝了",
        "回购", "美美", "漂亮", "好吃", "性价比高", "值得", "赞", "👍", "❤", "😍", "🔥",
        "love", "great", "amazing", "awesome", "beautiful", "perfect", "nice", "good quality", "recommend",
    ),
}
