"""Forms of the site's own pages (CSRF-checked by Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("邮箱 Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("密码 Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("记住我 Remember me")
